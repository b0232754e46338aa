"""hostDisk: a raw image file on the node, below a directory the node allows.

Disk: the file must exist. DiskOrCreate: created sparse with `capacity` (and its
parent directories) when missing; an existing file is used as it is, never resized.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.host_paths import absolute_spec_path, allowed_base, make_parents_below
from virt_launcher.storage.sizes import quantity_bytes
from virt_launcher.storage.sparse import create_sparse_file
from virt_launcher.storage.volume_ref import VolumeRef

HOST_DISK_TYPES = ("Disk", "DiskOrCreate")


def prepare_host_disk(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    path_field = volume.field("path")
    requested = absolute_spec_path(volume.source.get("path"), path_field)
    disk_type = volume.source.get("type")
    if disk_type not in HOST_DISK_TYPES:
        raise StorageError(volume.field("type"), f"{disk_type!r} must be one of {', '.join(HOST_DISK_TYPES)}")
    base = allowed_base(requested, context.host_disk_bases, path_field)
    target = Path(os.path.realpath(requested))
    if not os.path.lexists(target):
        if disk_type == "Disk":
            raise StorageError(path_field, f"{str(requested)!r} does not exist (type Disk needs an existing image)")
        _create(volume, base, target)
    # Checked again after creation: the path must still resolve inside the base.
    allowed_base(target, [base], path_field)
    _require_regular_file(target, path_field, requested)
    return PreparedDisk(
        name=volume.name, path=target, format="raw", type="file", read_only=False,
        shared=bool(volume.source.get("shared")),
    )


def _create(volume: VolumeRef, base: Path, target: Path) -> None:
    size = quantity_bytes(volume.source.get("capacity"), volume.field("capacity"))
    make_parents_below(base, target, volume.field("path"))
    try:
        create_sparse_file(target, size)
    except OSError as exc:
        raise StorageError(volume.field("path"), f"cannot create {target}: {exc.strerror or exc}") from None


def _require_regular_file(target: Path, field: str, requested: Path) -> None:
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        raise StorageError(field, f"{str(requested)!r} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(field, f"{str(requested)!r} is not a regular file")
