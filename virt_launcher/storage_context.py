"""The launcher's storage context: where its pod's claims are, what its ConfigMaps and
Secrets hold, and where containerDisk images come from (a JSON file the pod carries)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kube_client.quantity import parse_quantity
from kubevirt_api.pod_layout import claim_device, claim_mount

from virt_launcher.domain_manager import PrepareDisks
from virt_launcher.storage import ClaimMount, PreparedDisk, StorageContext, prepare_volumes

DEFAULT_IMAGE_CACHE = Path("/var/cache/kubevirt-py/images")


def load_context(path: Path | None, image_store: Path | None, work_dir: Path) -> StorageContext:
    """Read the context file; its errors name the key that is wrong."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(f"--context {path}: {error}") from None
    claims = {}
    for name, claim in (data.get("claims") or {}).items():
        try:
            claims[name] = ClaimMount(path=Path(claim["path"]), volume_mode=claim.get("volumeMode", "Filesystem"),
                                      capacity_bytes=claim.get("capacityBytes"),
                                      read_only=bool(claim.get("readOnly", False)))
        except (KeyError, TypeError) as error:
            raise SystemExit(f"--context {path}: claims.{name}: missing or invalid {error}") from None
    return StorageContext(
        claims=claims, image_store=image_store,
        image_cache=Path(data.get("imageCache") or DEFAULT_IMAGE_CACHE),
        config_maps=data.get("configMaps") or {}, secrets=data.get("secrets") or {},
        host_disk_bases=[Path(p) for p in data.get("hostDiskBases") or []])


def _claim_source(volume: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return volume.get("persistentVolumeClaim") or (volume.get("ephemeral") or {}).get("persistentVolumeClaim")


def _capacity(info: Mapping[str, Any]) -> int | None:
    value = (info.get("capacity") or {}).get("storage") or (info.get("requests") or {}).get("storage")
    try:
        return int(parse_quantity(value)) if value is not None else None
    except ValueError:
        return None


def pod_claims(vmi: Mapping[str, Any]) -> dict[str, ClaimMount]:
    """The VMI's claims where its launcher pod mounts them (one directory or device per
    volume), with the mode and capacity the VMI controller recorded in volumeStatus."""
    infos = {s.get("name"): s.get("persistentVolumeClaimInfo") or {}
             for s in (vmi.get("status") or {}).get("volumeStatus") or []}
    claims: dict[str, ClaimMount] = {}
    for volume in (vmi.get("spec") or {}).get("volumes") or []:
        source = _claim_source(volume)
        if not source or not source.get("claimName"):
            continue
        info = infos.get(volume.get("name")) or {}
        block = info.get("volumeMode") == "Block"
        path = claim_device(volume["name"]) if block else claim_mount(volume["name"])
        claims[source["claimName"]] = ClaimMount(path=Path(path), volume_mode="Block" if block else "Filesystem",
                                                 capacity_bytes=_capacity(info),
                                                 read_only=bool(source.get("readOnly")))
    return claims


def disk_preparer(work_dir: Path, context: StorageContext) -> PrepareDisks:
    def prepare(vmi: dict[str, Any]) -> Mapping[str, PreparedDisk]:
        # An explicit context (standalone runs, tests) wins over the pod's layout.
        merged = replace(context, claims={**pod_claims(vmi), **context.claims})
        return prepare_volumes(vmi, work_dir / "disks", merged)

    return prepare
