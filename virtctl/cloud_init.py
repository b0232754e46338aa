"""The cloud-init volume `virtctl create vm` adds: user data given base64-encoded, or a
#cloud-config generated from --user, --password-file, --ssh-key and --ga-manage-ssh."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

HEADER = "#cloud-config"
VOLUME_NAME = "cloudinitdisk"
SOURCES = {"nocloud": "cloudInitNoCloud", "configdrive": "cloudInitConfigDrive"}
NONE = "none"


@dataclass(frozen=True)
class CloudInitRequest:
    source: str = "nocloud"  # nocloud, configdrive or none
    source_given: bool = False
    user_data_base64: str = ""
    network_data_base64: str = ""
    user: str = ""
    password: str = ""
    ssh_keys: tuple[str, ...] = field(default_factory=tuple)
    ga_manage_ssh: bool = False


def generated_config(request: CloudInitRequest) -> str:
    """A #cloud-config document; dumped with a YAML emitter so passwords and keys are quoted safely."""
    config: dict[str, Any] = {}
    if request.user:
        config["user"] = request.user
    if request.password:
        config["password"] = request.password
        config["chpasswd"] = {"expire": False}
    if request.ssh_keys:
        config["ssh_authorized_keys"] = list(request.ssh_keys)
    if request.ga_manage_ssh:
        # SELinux guests refuse the guest agent access to ~/.ssh unless this boolean is set.
        config["runcmd"] = [["setsebool", "-P", "virt_qemu_ga_manage_ssh", "on"]]
    if not config:
        return HEADER
    body: str = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=10**6)
    return HEADER + "\n" + body.rstrip()


def cloud_init_volume(request: CloudInitRequest) -> dict[str, Any] | None:
    """The volume, or None: for --cloud-init=none, and when nothing but an empty header
    would be written and no data source type was asked for."""
    if request.source == NONE:
        return None
    source: dict[str, Any] = {}
    if request.network_data_base64:
        source["networkDataBase64"] = request.network_data_base64
    if request.user_data_base64:
        source["userDataBase64"] = request.user_data_base64
    else:
        source["userData"] = generated_config(request)
    if not request.source_given and source == {"userData": HEADER}:
        return None
    return {"name": VOLUME_NAME, SOURCES[request.source]: source}
