"""emptyDisk: a blank qcow2 that lives as long as the VMI (qcow2, as upstream, so the
file stays small until the guest writes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.qemu_img import QemuImgError, create_qcow2, image_info
from virt_launcher.storage.sizes import quantity_bytes
from virt_launcher.storage.volume_ref import VolumeRef
from virt_launcher.storage.workdir import artifact_path, discard, publish, temporary_sibling


def prepare_empty_disk(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    size = quantity_bytes(volume.source.get("capacity"), volume.field("capacity"))
    path = artifact_path(workdir, volume.name, ".qcow2", volume.field())
    try:
        if not (reuse and path.exists() and _is_blank_disk_of(path, size)):
            temp = temporary_sibling(path)
            try:
                create_qcow2(temp, size)
                publish(temp, path)
            finally:
                discard(temp)
    except QemuImgError as exc:
        raise StorageError(volume.field(), f"cannot create the empty disk: {exc}") from None
    return PreparedDisk(name=volume.name, path=path, format="qcow2", type="file", read_only=False)


def _is_blank_disk_of(path: Path, size: int) -> bool:
    """Ours from an earlier preparation of this VMI (kept: the guest may be using it)."""
    try:
        info = image_info(path)
    except QemuImgError:
        return False
    return info.format == "qcow2" and info.virtual_size == size and not info.backing_file
