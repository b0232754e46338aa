"""cloudInitConfigDrive: the OpenStack config drive data source, an ISO labelled
"config-2" with openstack/latest/{user_data, meta_data.json, network_data.json}."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.cloud_init_data import resolve_cloud_init
from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.guest_identity import hostname, instance_uuid, vmi_name
from virt_launcher.storage.iso import write_iso
from virt_launcher.storage.volume_ref import VolumeRef
from virt_launcher.storage.workdir import artifact_path

CONFIG_DRIVE_LABEL = "config-2"
CONFIG_DRIVE_DIR = "openstack/latest"


def config_drive_meta_data(vmi: Mapping[str, Any]) -> bytes:
    meta = {
        "uuid": instance_uuid(vmi),
        "hostname": hostname(vmi),
        "name": vmi_name(vmi),
        "availability_zone": "",
        "launch_index": 0,
        "public_keys": {},
    }
    return json.dumps(meta, indent=2).encode()


def prepare_cloud_init_config_drive(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    data = resolve_cloud_init(volume, context)
    files = {
        f"{CONFIG_DRIVE_DIR}/user_data": data.user_data,
        f"{CONFIG_DRIVE_DIR}/meta_data.json": config_drive_meta_data(vmi),
    }
    if data.network_data is not None:
        files[f"{CONFIG_DRIVE_DIR}/network_data.json"] = data.network_data
    path = artifact_path(workdir, volume.name, ".iso", volume.field())
    write_iso(path, CONFIG_DRIVE_LABEL, files)
    return PreparedDisk(name=volume.name, path=path, format="raw", type="file", read_only=True, device_hint="cdrom")
