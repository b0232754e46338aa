"""Who the guest is, as cloud-init metadata tells it: instance id, uuid, hostname."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any


def _metadata(vmi: Mapping[str, Any]) -> Mapping[str, Any]:
    return vmi.get("metadata") or {}


def vmi_name(vmi: Mapping[str, Any]) -> str:
    return str(_metadata(vmi).get("name") or "")


def vmi_namespace(vmi: Mapping[str, Any]) -> str:
    return str(_metadata(vmi).get("namespace") or "default")


def hostname(vmi: Mapping[str, Any]) -> str:
    """spec.hostname when set, else the VMI's name (the guest's name on the pod network)."""
    return str((vmi.get("spec") or {}).get("hostname") or vmi_name(vmi))


def instance_id(vmi: Mapping[str, Any]) -> str:
    """<name>.<namespace>, as upstream: stable across restarts of a VM.

    cloud-init re-runs its once-per-instance steps (host keys, users, first-boot
    scripts) whenever the instance id changes; a VMI's uid is new at every start of
    the VM, so using it would make every reboot of a persistent disk a first boot.
    """
    return f"{vmi_name(vmi)}.{vmi_namespace(vmi)}"


def instance_uuid(vmi: Mapping[str, Any]) -> str:
    """The guest's UUID for a config drive: the VMI uid, else a stable one from its name."""
    uid = _metadata(vmi).get("uid")
    if uid:
        return str(uid)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubevirt.io/{vmi_namespace(vmi)}/{vmi_name(vmi)}"))
