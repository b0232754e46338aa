"""Node paths from the spec (hostDisk) confined to the node's allowlisted directories.

The check is made on the fully resolved path, so a symlink anywhere on the way
(planted by whoever else can write below the base) cannot lead outside; ".." is
refused outright rather than normalised, since a spec that needs it is suspect.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from virt_launcher.storage.errors import StorageError


def absolute_spec_path(value: object, field: str) -> Path:
    if not isinstance(value, str) or not value:
        raise StorageError(field, "a path is required")
    if "\x00" in value:
        raise StorageError(field, "must not contain NUL")
    if not value.startswith("/"):
        raise StorageError(field, f"{value!r} must be an absolute path")
    if ".." in value.split("/"):
        raise StorageError(field, f"{value!r} must not contain '..'")
    return Path(value)


def allowed_base(path: Path, bases: Sequence[Path], field: str) -> Path:
    """The resolved allowlisted base that path, once resolved, lies strictly below."""
    if not bases:
        raise StorageError(field, "hostDisk is not allowed on this node (no host disk directories are configured)")
    resolved = Path(os.path.realpath(path))
    for base in bases:
        base_real = Path(os.path.realpath(base))
        if resolved != base_real and resolved.is_relative_to(base_real):
            return base_real
    allowed = ", ".join(str(b) for b in bases)
    raise StorageError(field, f"{str(path)!r} is not below an allowed host disk directory ({allowed})")


def make_parents_below(base: Path, target: Path, field: str) -> None:
    """mkdir -p target's parents, re-checking after each step that we are still inside base.

    target is already resolved; a directory swapped for a symlink while we work is
    caught by resolving each new component again.
    """
    relative = target.parent.relative_to(base)
    current = base
    for part in relative.parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            pass
        real = Path(os.path.realpath(current))
        if not real.is_relative_to(base):
            raise StorageError(field, f"{current} leads outside the allowed host disk directory {base}")
        if not real.is_dir():
            raise StorageError(field, f"{current} is not a directory")
        current = real
