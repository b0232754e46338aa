"""The claims of a VMI as its status records them (volumeStatus[].persistentVolumeClaimInfo),
read before the launcher pod exists: the pod mounts a Block claim differently from a
Filesystem one, and the launcher sizes a new disk.img from the claim's capacity."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kube_client.rawapi import call

Obj = dict[str, Any]


class MissingClaim(LookupError):
    """A claim the VMI names does not exist (yet): the VMI waits for it, as upstream."""


def _claim_name(volume: Obj) -> str | None:
    source = volume.get("persistentVolumeClaim") or (volume.get("ephemeral") or {}).get("persistentVolumeClaim")
    return (source or {}).get("claimName")


def _claim_info(claim: Obj) -> Obj:
    spec = claim.get("spec") or {}
    status = claim.get("status") or {}
    info: Obj = {"claimName": claim["metadata"]["name"],
                 "accessModes": list(spec.get("accessModes") or []),
                 "volumeMode": spec.get("volumeMode") or "Filesystem",
                 "requests": dict((spec.get("resources") or {}).get("requests") or {})}
    if status.get("capacity"):
        info["capacity"] = dict(status["capacity"])
    return info


def claim_volume_status(core: client.CoreV1Api, vmi: Obj) -> list[Obj]:
    """volumeStatus entries for every claim the VMI uses; raises MissingClaim naming it."""
    namespace = vmi["metadata"]["namespace"]
    entries: list[Obj] = []
    for volume in (vmi.get("spec") or {}).get("volumes") or []:
        name = _claim_name(volume)
        if not name:
            continue
        try:
            claim = call(core.read_namespaced_persistent_volume_claim, name, namespace)
        except client.ApiException as error:
            if error.status == 404:
                raise MissingClaim(f"PVC {namespace}/{name} does not exist, waiting for it to appear") from None
            raise
        entries.append({"name": volume["name"], "target": "", "persistentVolumeClaimInfo": _claim_info(claim)})
    return entries
