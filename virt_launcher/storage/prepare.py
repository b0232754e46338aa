"""Preparing every volume of a VMI before its domain starts.

The whole spec is checked first (names, one source each, supported types), so a
mistake in the last volume is reported before any disk has been created for the
first one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.cloud_init_config_drive import prepare_cloud_init_config_drive
from virt_launcher.storage.cloud_init_nocloud import prepare_cloud_init_nocloud
from virt_launcher.storage.container_disk import prepare_container_disk
from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.empty_disk import prepare_empty_disk
from virt_launcher.storage.ephemeral import prepare_ephemeral
from virt_launcher.storage.errors import StorageError, UnsupportedVolume
from virt_launcher.storage.host_disk import prepare_host_disk
from virt_launcher.storage.object_volumes import prepare_config_map, prepare_secret
from virt_launcher.storage.persistent_volume_claim import prepare_persistent_volume_claim
from virt_launcher.storage.volume_ref import VolumeRef, make_volume_ref, volume_field
from virt_launcher.storage.workdir import adopt_workdir, ensure_workdir

# (volume, vmi, working directory, context, reuse throwaway disks of this VMI) -> disk
Preparer = Callable[[VolumeRef, Mapping[str, Any], Path, StorageContext, bool], PreparedDisk]

PREPARERS: dict[str, Preparer] = {
    "containerDisk": prepare_container_disk,
    "persistentVolumeClaim": prepare_persistent_volume_claim,
    "ephemeral": prepare_ephemeral,
    "emptyDisk": prepare_empty_disk,
    "hostDisk": prepare_host_disk,
    "cloudInitNoCloud": prepare_cloud_init_nocloud,
    "cloudInitConfigDrive": prepare_cloud_init_config_drive,
    "configMap": prepare_config_map,
    "secret": prepare_secret,
}


def volume_refs(vmi: Mapping[str, Any]) -> list[VolumeRef]:
    """spec.volumes, validated: DNS-label names, unique, one supported source each."""
    volumes = (vmi.get("spec") or {}).get("volumes") or []
    if not isinstance(volumes, list):
        raise StorageError("spec.volumes", "must be a list")
    refs: list[VolumeRef] = []
    seen: dict[str, int] = {}
    for index, volume in enumerate(volumes):
        ref = make_volume_ref(volume, index)
        if ref.name in seen:
            raise StorageError(
                volume_field(index, "name"), f"{ref.name!r} is already the name of spec.volumes[{seen[ref.name]}]"
            )
        seen[ref.name] = index
        if ref.kind not in PREPARERS:
            raise UnsupportedVolume(ref.field(), ref.kind)
        refs.append(ref)
    return refs


def workdir_owner(vmi: Mapping[str, Any]) -> str:
    metadata = vmi.get("metadata") or {}
    return str(metadata.get("uid") or f"{metadata.get('namespace') or 'default'}/{metadata.get('name') or ''}")


def prepare_volumes(vmi: Mapping[str, Any], workdir: Path, context: StorageContext) -> dict[str, PreparedDisk]:
    """Prepare every volume of vmi; returns volume name -> how libvirt attaches it.

    Raises StorageError (str: "spec.volumes[i].<field>: <why>") for the first volume
    that cannot be prepared. Running it again for the same VMI is safe: durable disks
    are never recreated and the VMI's throwaway disks are kept.
    """
    refs = volume_refs(vmi)
    root = ensure_workdir(workdir)
    reuse = adopt_workdir(root, workdir_owner(vmi))
    return {ref.name: PREPARERS[ref.kind](ref, vmi, root, context, reuse) for ref in refs}
