"""containerDisk: a disk image shipped in a container image, used through a per-VMI
qcow2 overlay so the shared base is never written."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.container_base import container_base
from virt_launcher.storage.container_image import image_disk_file, make_read_only, unpacked_image_root
from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.overlay import ensure_overlay
from virt_launcher.storage.volume_ref import VolumeRef
from virt_launcher.storage.workdir import artifact_path


def prepare_container_disk(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    rootfs = unpacked_image_root(volume, context.image_store, context.image_cache)
    base = image_disk_file(volume, rootfs)
    make_read_only(base)
    known = container_base(base, rootfs.parent, volume.field("image"))  # recorded beside the unpacked image
    overlay = artifact_path(workdir, volume.name, ".qcow2", volume.field())
    ensure_overlay(overlay, base, known.format, reuse=reuse, field=volume.field(), template=known.overlay_template)
    return PreparedDisk(
        name=volume.name, path=overlay, format="qcow2", type="file", read_only=False, backing=base,
    )
