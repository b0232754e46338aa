"""Unix-socket addresses and permissions for launcher <-> handler contracts."""

from __future__ import annotations

import os
from pathlib import Path

# Only the owning user (root in a real deployment) may talk to a launcher or a
# handler socket: they accept commands that control guests.
SOCKET_MODE = 0o600
DIRECTORY_MODE = 0o700


def unix_target(path: str | os.PathLike[str]) -> str:
    return "unix:" + str(Path(path).absolute())


def prepare_socket_path(path: str | os.PathLike[str]) -> Path:
    """Create the socket's directory (0700 if new) and remove a stale socket file."""
    socket_path = Path(path).absolute()
    socket_path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    if socket_path.is_socket():
        socket_path.unlink()
    elif socket_path.exists():
        raise FileExistsError(f"{socket_path} exists and is not a socket; refusing to replace it")
    return socket_path


def restrict_socket(path: str | os.PathLike[str]) -> None:
    os.chmod(path, SOCKET_MODE)
