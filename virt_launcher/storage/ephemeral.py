"""ephemeral: a PVC as the read-only base of a per-VMI qcow2 overlay; the guest's
writes are thrown away with the VMI and the claim is never written."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.claims import block_device, disk_image_in_claim, lookup_claim
from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.overlay import ensure_overlay
from virt_launcher.storage.volume_ref import VolumeRef
from virt_launcher.storage.workdir import artifact_path


def prepare_ephemeral(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    claim = volume.source.get("persistentVolumeClaim")
    claim_field = volume.field("persistentVolumeClaim")
    if not isinstance(claim, Mapping):
        raise StorageError(claim_field, "an ephemeral volume needs a persistentVolumeClaim")
    mount = lookup_claim(claim, context, claim_field)
    if mount.volume_mode == "Block":
        base, _ = block_device(mount.path, f"{claim_field}.claimName")
    else:
        base = disk_image_in_claim(mount.path, f"{claim_field}.claimName")
        if not base.exists():
            # Never created here: an empty base would silently boot nothing.
            raise StorageError(f"{claim_field}.claimName", "the claim has no disk.img to use as a base")
    overlay = artifact_path(workdir, volume.name, ".qcow2", volume.field())
    # A claim's disk is raw by contract; it is not probed, since its contents are the guest's.
    ensure_overlay(overlay, base, "raw", reuse=reuse, field=volume.field())
    return PreparedDisk(name=volume.name, path=overlay, format="qcow2", type="file", read_only=False, backing=base)
