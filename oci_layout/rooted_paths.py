"""Paths taken from untrusted input (pod specs, image layers) resolved so they can
never leave the directory they belong to.

Two rules: names and relative paths from a spec are rejected outright when they are
absolute or climb with "..", and every path that walks through existing files is
resolved the way a chroot would see it, so a symlink planted in an image layer or a
shared volume (``etc -> /``) points back inside the root instead of at the host.

Only the standard library is used, and neither re nor pathlib at import: the sandbox
trampoline imports this module on every container start. Resolution works on str and
on Path roots alike, and answers in the root's type.
"""

from __future__ import annotations

import errno
import os
import stat

# Patterns as text: re caches what it compiles, and only the kubelet's side needs them.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
# Pod UIDs are UUIDs in a real cluster; tests and other tools sometimes use plain names.
_UID = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_MAX_SYMLINKS = 40

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    Root = TypeVar("Root", str, "os.PathLike[str]")


class UnsafePath(ValueError):
    """A name or path from a spec or an image would escape its directory."""


def _matches(pattern: str, text: str) -> bool:
    import re

    return re.fullmatch(pattern, text) is not None


def dns_label(name: object, what: str) -> str:
    if not isinstance(name, str) or len(name) > 63 or not _matches(_DNS_LABEL, name):
        raise UnsafePath(f"{what} {name!r} is not a valid DNS-1123 label")
    return name


def pod_uid(uid: object) -> str:
    if not isinstance(uid, str) or len(uid) > 128 or not _matches(_UID, uid) or ".." in uid:
        raise UnsafePath(f"pod uid {uid!r} cannot name a directory")
    return uid


def relative_parts(path: object, what: str) -> list[str]:
    """Split a relative path from a spec, refusing anything that is not plainly below."""
    if not isinstance(path, str) or not path:
        raise UnsafePath(f"{what} must be a non-empty relative path, got {path!r}")
    if path.startswith("/") or "\x00" in path:
        raise UnsafePath(f"{what} {path!r} must be relative")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafePath(f"{what} {path!r} must not contain '..' or be empty")
    return parts


def absolute_parts(path: object, what: str) -> list[str]:
    """Split an absolute in-container path (a mountPath, a devicePath)."""
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise UnsafePath(f"{what} {path!r} must be an absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"{what} {path!r} must not contain '..'")
    return parts


def _like(root: Root, path: str) -> Root:
    return path if isinstance(root, str) else type(root)(path)  # type: ignore[call-arg,return-value]


def resolve_in_root(root: Root, path: str, *, follow_final: bool = True) -> Root:
    """Resolve path as a process chrooted at root would, without leaving root.

    Absolute symlink targets restart at root and ".." stops at root. Components that
    do not exist yet are kept literally, so the result also names paths to create.
    """
    base = os.fspath(root)
    # Still to walk, last component first (so that pop() takes the next one).
    pending = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    resolved: list[str] = []
    followed = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(base, *resolved, part)
        if not pending and not follow_final:
            resolved.append(part)
            break
        try:
            info = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if not stat.S_ISLNK(info.st_mode):
            resolved.append(part)
            continue
        followed += 1
        if followed > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, f"too many symlinks resolving {path!r} under {root}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
    return _like(root, os.path.join(base, *resolved))


def make_dirs_in_root(root: Root, parts: list[str], mode: int = 0o755) -> Root:
    """mkdir -p inside root, resolving every existing prefix in root's terms."""
    current = root
    for depth in range(1, len(parts) + 1):
        current = resolve_in_root(root, "/".join(parts[:depth]))
        # Everything in current that exists is a real directory (symlinks were
        # resolved), so creating what is missing below it cannot leave root.
        try:
            os.makedirs(current, mode, exist_ok=True)
        except FileExistsError:
            pass
        if not os.path.isdir(current):
            raise NotADirectoryError(errno.ENOTDIR, f"{current} is not a directory")
    return current

