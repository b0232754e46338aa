"""Can a VMI live-migrate? The LiveMigratable condition's answer and reason, as upstream
computes it from the spec: every disk must be reachable from the target node too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

DISKS_NOT_MIGRATABLE = "DisksNotLiveMigratable"
INTERFACE_NOT_MIGRATABLE = "InterfaceNotLiveMigratable"


@dataclass(frozen=True)
class Migratability:
    migratable: bool
    reason: str = ""
    message: str = ""


def _claim_name(volume: Obj) -> str | None:
    source = volume.get("persistentVolumeClaim") or (volume.get("ephemeral") or {}).get("persistentVolumeClaim")
    return (source or {}).get("claimName")


def _access_modes(vmi: Obj) -> dict[str, list[str]]:
    return {s.get("name", ""): list((s.get("persistentVolumeClaimInfo") or {}).get("accessModes") or [])
            for s in (vmi.get("status") or {}).get("volumeStatus") or []}


def migratability(vmi: Obj) -> Migratability:
    spec = vmi.get("spec") or {}
    modes = _access_modes(vmi)
    for volume in spec.get("volumes") or []:
        claim = _claim_name(volume)
        if claim and "ReadWriteMany" not in modes.get(volume.get("name", ""), []):
            return Migratability(False, DISKS_NOT_MIGRATABLE,
                                 f"cannot migrate VMI: PVC {claim} is not shared, live migration requires that all "
                                 f"PVCs must be shared (using ReadWriteMany access mode)")
        host_disk = volume.get("hostDisk")
        if host_disk is not None and not host_disk.get("shared"):
            return Migratability(False, DISKS_NOT_MIGRATABLE,
                                 f"cannot migrate VMI: hostDisk {volume.get('name')} is not shared")
    for interface in ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []:
        if "masquerade" not in interface and "slirp" not in interface:
            return Migratability(False, INTERFACE_NOT_MIGRATABLE,
                                 f"cannot migrate VMI: interface {interface.get('name')} does not use masquerade")
    return Migratability(True)


def reported_migratability(vmi: Obj) -> Migratability:
    """The LiveMigratable condition virt-handler reported, or the spec's answer before it has."""
    for item in (vmi.get("status") or {}).get("conditions") or []:
        if item.get("type") == "LiveMigratable":
            return Migratability(item.get("status") == "True", str(item.get("reason") or ""),
                                 str(item.get("message") or ""))
    return migratability(vmi)
