"""persistentVolumeClaim: the guest's durable disk.

disk.img is created sparse the first time a Filesystem claim is used and is never
truncated, resized or recreated afterwards: it is the data that must survive the VM.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.claims import block_device, disk_image_in_claim, lookup_claim
from virt_launcher.storage.context import ClaimMount, StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.sizes import align_down
from virt_launcher.storage.sparse import create_sparse_file
from virt_launcher.storage.volume_ref import VolumeRef


def prepare_persistent_volume_claim(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    mount = lookup_claim(volume.source, context, volume.field())
    read_only = bool(volume.source.get("readOnly")) or mount.read_only
    if mount.volume_mode == "Block":
        path, disk_type = block_device(mount.path, volume.field("claimName"))
        return PreparedDisk(name=volume.name, path=path, format="raw", type=disk_type, read_only=read_only)
    image = disk_image_in_claim(mount.path, volume.field("claimName"))
    if not image.exists():
        if read_only:
            raise StorageError(
                volume.field("readOnly"), "the claim has no disk.img and a read-only disk cannot be created"
            )
        _create_disk_image(image, mount, volume.field("claimName"))
    return PreparedDisk(name=volume.name, path=image, format="raw", type="file", read_only=read_only)


def _create_disk_image(image: Path, mount: ClaimMount, field: str) -> None:
    if not mount.capacity_bytes or mount.capacity_bytes <= 0:
        raise StorageError(field, "the claim's capacity is unknown, so its disk.img cannot be created")
    size = initial_size(image.parent, mount.capacity_bytes)
    if size <= 0:
        raise StorageError(field, "the claim has no free space for a disk.img")
    try:
        create_sparse_file(image, size)
    except OSError as exc:
        raise StorageError(field, f"cannot create {image}: {exc.strerror or exc}") from None


def initial_size(directory: Path, capacity: int) -> int:
    """The claim's capacity, or less when its filesystem has less room.

    A sparse file larger than the space behind it lets the guest write until the
    host filesystem is full and QEMU pauses it on ENOSPC; a smaller disk fails
    inside the guest, where the user can see and fix it.
    """
    fs = os.statvfs(directory)
    return align_down(min(capacity, fs.f_bavail * fs.f_frsize))
