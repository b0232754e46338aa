"""containerDisk: a disk image shipped in a container image, used through a per-VMI
qcow2 overlay so the shared base is never written."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.container_image import image_disk_file, make_read_only, unpacked_image_root
from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import DiskFormat, PreparedDisk
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.overlay import ensure_overlay
from virt_launcher.storage.qemu_img import QemuImgError, image_info
from virt_launcher.storage.volume_ref import VolumeRef
from virt_launcher.storage.workdir import artifact_path


def prepare_container_disk(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    rootfs = unpacked_image_root(volume, context.image_store, context.image_cache)
    base = image_disk_file(volume, rootfs)
    make_read_only(base)
    base_format = trusted_base_format(base, volume.field("image"))
    overlay = artifact_path(workdir, volume.name, ".qcow2", volume.field())
    ensure_overlay(overlay, base, base_format, reuse=reuse, field=volume.field())
    return PreparedDisk(
        name=volume.name, path=overlay, format="qcow2", type="file", read_only=False, backing=base,
    )


def trusted_base_format(base: Path, field: str) -> DiskFormat:
    """raw or qcow2 as detected, refusing images that would reach beyond themselves.

    A qcow2 from a registry can name a backing file or an external data file anywhere
    on the node (/etc/shadow, another guest's disk); the guest would read it.
    """
    try:
        info = image_info(base)
    except QemuImgError as exc:
        raise StorageError(field, f"cannot inspect the disk image: {exc}") from None
    if info.format == "raw":
        return "raw"
    if info.format != "qcow2":
        raise StorageError(field, f"disk image format {info.format!r} is not supported (raw or qcow2)")
    if info.backing_file:
        raise StorageError(field, "the qcow2 disk image has a backing file, which is not allowed")
    if info.data_file:
        raise StorageError(field, "the qcow2 disk image has an external data file, which is not allowed")
    return "qcow2"
