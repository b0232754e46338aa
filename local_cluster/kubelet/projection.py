"""Writing a set of files into a volume directory atomically, so a container that
reads a ConfigMap or Secret volume while it is being refreshed sees either the old
or the new set, never a mix.

Layout, as kubelet's: the files live in a hidden timestamped directory, "..data"
points at the current one, and each top-level name is a symlink through "..data".
A refresh writes a new directory and swaps "..data" with one rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from oci_layout.rooted_paths import UnsafePath, relative_parts

DATA_LINK = "..data"


@dataclass(frozen=True)
class ProjectedFile:
    content: bytes
    mode: int


def write_projection(target: Path, files: dict[str, ProjectedFile]) -> None:
    parsed = {path: _projection_parts(path) for path in files}
    target.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S."), dir=target))
    fresh.chmod(0o755)
    for path, content in files.items():
        parts = parsed[path]
        destination = fresh.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content.content)
        os.chmod(destination, content.mode & 0o7777)
    previous = _current_data_dir(target)
    staging = target / "..data_tmp"
    if os.path.lexists(staging):
        os.unlink(staging)
    os.symlink(fresh.name, staging)
    os.rename(staging, target / DATA_LINK)
    tops = {parts[0] for parts in parsed.values()}
    for top in tops:
        link = target / top
        if not os.path.lexists(link):
            os.symlink(f"{DATA_LINK}/{top}", link)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if previous is not None and previous != fresh:
        shutil.rmtree(previous, ignore_errors=True)


def _projection_parts(path: str) -> list[str]:
    parts = relative_parts(path, "volume item path")
    if parts[0].startswith(".."):
        raise UnsafePath(f"volume item path {path!r} must not start with '..'")
    return parts


def _current_data_dir(target: Path) -> Path | None:
    link = target / DATA_LINK
    if not link.is_symlink():
        return None
    current = target / os.readlink(link)
    return current if current.parent == target else None
