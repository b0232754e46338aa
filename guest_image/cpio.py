"""A "newc" cpio archive, the format the kernel unpacks an initramfs from.

Written here rather than with GNU cpio so that every header field is chosen, not
inherited from the build machine: owner root, one fixed mtime, inode numbers in
path order, and device nodes (/dev/console) without needing mknod on the host.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import PurePosixPath

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    mode: int  # file type and permission bits, as in st_mode
    data: bytes = b""  # file contents, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node


class Archive:
    """Entries by path; parent directories are added as needed, output in path order."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def directory(self, path: str, perm: int = 0o755) -> None:
        self._add(path, Entry(stat.S_IFDIR | perm))

    def file(self, path: str, data: bytes, perm: int = 0o644) -> None:
        self._add(path, Entry(stat.S_IFREG | perm, data))

    def symlink(self, path: str, target: str) -> None:
        self._add(path, Entry(stat.S_IFLNK | 0o777, target.encode()))

    def char_device(self, path: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._add(path, Entry(stat.S_IFCHR | perm, rdev=(major, minor)))

    def paths(self) -> list[str]:
        return sorted(self._entries)

    def _add(self, path: str, entry: Entry) -> None:
        name = _normalize(path)
        existing = self._entries.get(name)
        if existing is not None and not (stat.S_ISDIR(existing.mode) and stat.S_ISDIR(entry.mode)):
            raise ValueError(f"{path} is already in the archive")
        for parent in reversed(PurePosixPath(name).parents):
            if str(parent) != ".":
                self._entries.setdefault(str(parent), Entry(stat.S_IFDIR | 0o755))
        self._entries[name] = entry

    def to_bytes(self, mtime: int) -> bytes:
        out = bytearray()
        # Sorted paths put every directory before what it contains, which the
        # kernel's unpacker needs; inode numbers follow the same order.
        for ino, name in enumerate(sorted(self._entries), start=1):
            entry = self._entries[name]
            nlink = 2 if stat.S_ISDIR(entry.mode) else 1
            _append(out, name, entry, ino, nlink, mtime)
        _append(out, _TRAILER, Entry(0), 0, 1, 0)
        # Pad to a 512-byte block like cpio does; the kernel ignores the zeros.
        out.extend(b"\0" * (-len(out) % 512))
        return bytes(out)


def _normalize(path: str) -> str:
    name = str(PurePosixPath("/", path).relative_to("/"))
    if name in ("", ".") or ".." in PurePosixPath(name).parts:
        raise ValueError(f"bad archive path {path!r}")
    return name


def _append(out: bytearray, name: str, entry: Entry, ino: int, nlink: int, mtime: int) -> None:
    encoded = name.encode() + b"\0"
    fields = (
        ino, entry.mode, 0, 0, nlink, mtime, len(entry.data),
        0, 0, entry.rdev[0], entry.rdev[1], len(encoded), 0,
    )  # fmt: skip
    out.extend(_MAGIC + b"".join(b"%08X" % value for value in fields))
    out.extend(encoded)
    out.extend(b"\0" * (-len(out) % 4))
    out.extend(entry.data)
    out.extend(b"\0" * (-len(out) % 4))
