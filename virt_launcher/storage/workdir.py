"""The per-VMI working directory: where overlays, blank disks and ISOs are written.

Every file is named after a validated volume name, created under a temporary name
and renamed into place, so a crash never leaves a half-written disk that a later
preparation would mistake for a finished one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from virt_launcher.storage.errors import StorageError

# Starts with "." so it can never collide with a volume's file (volume names are DNS labels).
_OWNER_FILE = ".storage-owner"


def ensure_workdir(workdir: Path) -> Path:
    workdir = Path(workdir)
    workdir.mkdir(mode=0o750, parents=True, exist_ok=True)
    # Absolute and symlink-free, so paths handed to qemu-img and libvirt are unambiguous
    # (a relative path with ":" could even be read by QEMU as a protocol prefix).
    return workdir.resolve(strict=True)


def artifact_path(workdir: Path, name: str, suffix: str, field: str) -> Path:
    """workdir/<name><suffix> for a validated volume name, refusing anything planted there."""
    path = workdir / f"{name}{suffix}"
    if path.parent != workdir:
        raise StorageError(field, f"volume file {path.name!r} would leave the working directory")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    # We only ever create regular files here; anything else (a symlink especially)
    # was put there by someone else and must not be written through.
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(field, f"{path} exists and is not a regular file")
    return path


def temporary_sibling(final: Path) -> Path:
    """An empty, unique file next to final, to be filled and then renamed onto it."""
    fd, temp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(temp)


def publish(temp: Path, final: Path) -> None:
    """Move a finished file into place atomically (a running guest keeps its old inode)."""
    os.replace(temp, final)


def discard(temp: Path) -> None:
    try:
        temp.unlink()
    except FileNotFoundError:
        pass


def adopt_workdir(workdir: Path, owner: str) -> bool:
    """Mark workdir as this VMI's; True when it already was.

    Throwaway disks (overlays, empty disks) are kept when storage is prepared again for
    the same VMI, because its guest may be running on them, and recreated when the
    directory last served another VMI, which must never see that VMI's writes.
    """
    stamp = workdir / _OWNER_FILE
    try:
        previous = stamp.read_text()
    except FileNotFoundError:
        previous = None
    if previous == owner:
        return True
    temp = temporary_sibling(stamp)
    temp.write_text(owner)
    publish(temp, stamp)
    return False
