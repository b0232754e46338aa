"""cloudInitNoCloud: the NoCloud data source, an ISO labelled "cidata" holding
user-data, meta-data and, when given, network-config."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.cloud_init_data import resolve_cloud_init
from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.guest_identity import hostname, instance_id
from virt_launcher.storage.iso import write_iso
from virt_launcher.storage.volume_ref import VolumeRef
from virt_launcher.storage.workdir import artifact_path

NOCLOUD_LABEL = "cidata"


def nocloud_meta_data(vmi: Mapping[str, Any]) -> bytes:
    # JSON is YAML as cloud-init reads it, every value quoted (a host named "yes" or "1e3"
    # stays a string), and costs no YAML library on the way to the guest's start.
    meta = {"instance-id": instance_id(vmi), "local-hostname": hostname(vmi)}
    return (json.dumps(meta, indent=1) + "\n").encode()


def prepare_cloud_init_nocloud(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    data = resolve_cloud_init(volume, context)
    files = {"user-data": data.user_data, "meta-data": nocloud_meta_data(vmi)}
    if data.network_data is not None:
        files["network-config"] = data.network_data
    path = artifact_path(workdir, volume.name, ".iso", volume.field())
    write_iso(path, NOCLOUD_LABEL, files)
    return PreparedDisk(name=volume.name, path=path, format="raw", type="file", read_only=True, device_hint="cdrom")
