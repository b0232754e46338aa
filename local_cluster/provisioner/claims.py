"""What a PersistentVolumeClaim asks of this provisioner, and the volume that answers it.

Volumes are hostPath volumes in both modes: a directory for Filesystem, and for
Block a sparse file (type File) standing in for the device. hostPath rather than
local because a local volume must name the node it lives on (nodeAffinity), while
here every node of the local cluster runs on the one host that holds the root
directory, so any node can use any volume.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kube_client.quantity import parse_quantity
from local_cluster.provisioner.storage_class import CLASS_NAME, PROVISIONER_NAME

Obj = dict[str, Any]

PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_ACCESS_MODES = ["ReadWriteOnce"]


def volume_name(claim: Obj) -> str:
    return f"pvc-{(claim.get('metadata') or {}).get('uid', '')}"


def uses_our_class(claim: Obj) -> bool:
    # No class, unset or empty, means the cluster's default class: ours.
    return (claim.get("spec") or {}).get("storageClassName") in (None, "", CLASS_NAME)


def wants_provisioning(claim: Obj) -> bool:
    """A live claim of our class that is not bound to some other, pre-made volume."""
    spec = claim.get("spec") or {}
    if (claim.get("metadata") or {}).get("deletionTimestamp") or not uses_our_class(claim):
        return False
    return spec.get("volumeName") in (None, "", volume_name(claim))


def is_bound(claim: Obj) -> bool:
    return bool((claim.get("spec") or {}).get("volumeName")) and (claim.get("status") or {}).get("phase") == "Bound"


def unsupported(claim: Obj) -> str | None:
    """Why this provisioner cannot make the volume the claim describes, if it cannot."""
    spec = claim.get("spec") or {}
    if not requested_storage(claim):
        return "the claim requests no storage (spec.resources.requests.storage)"
    selector = spec.get("selector") or {}
    if selector.get("matchLabels") or selector.get("matchExpressions"):
        # A new volume has no labels to match; only a selector that selects everything is harmless.
        return "claims with a selector are not supported by dynamic provisioning"
    if spec.get("dataSource") or spec.get("dataSourceRef"):
        return "volumes with a data source (clone, snapshot, populator) are not supported"
    try:
        if size_in_bytes(requested_storage(claim) or "") <= 0:
            return "the requested storage must be larger than zero"
    except (ValueError, ArithmeticError):
        return f"the requested storage {requested_storage(claim)!r} is not a quantity"
    return None


def requested_storage(claim: Obj) -> str | None:
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    storage = requests.get("storage")
    return str(storage) if storage else None


def size_in_bytes(quantity: str) -> int:
    return math.ceil(parse_quantity(quantity))


def is_block(claim: Obj) -> bool:
    return (claim.get("spec") or {}).get("volumeMode") == "Block"


def persistent_volume(claim: Obj, path: Path) -> Obj:
    meta, spec = claim.get("metadata") or {}, claim.get("spec") or {}
    block = is_block(claim)
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {PROVISIONED_BY: PROVISIONER_NAME}},
        "spec": {
            "capacity": {"storage": requested_storage(claim)},
            "accessModes": list(spec.get("accessModes") or DEFAULT_ACCESS_MODES),
            "volumeMode": "Block" if block else "Filesystem",
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": CLASS_NAME,
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta.get("namespace"),
                         "name": meta.get("name"), "uid": meta.get("uid"),
                         "resourceVersion": meta.get("resourceVersion")},
            "hostPath": {"path": str(path), "type": "File" if block else "Directory"},
        },
    }


def volume_path(volume: Obj) -> str:
    spec = volume.get("spec") or {}
    return str((spec.get("hostPath") or spec.get("local") or {}).get("path") or "")
