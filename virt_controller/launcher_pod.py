"""The virt-launcher pod of a VMI: what the VMI controller asks Kubernetes to run.

Requests carry the guest's memory plus an overhead computed from the VMI (our own
processes: the launcher, its libvirtd and QEMU's own allocations, page tables and a
share per vCPU), so the scheduler places guests by what they really consume.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from kube_client.quantity import parse_quantity
from kubevirt_api import labels
from kubevirt_api.groups import API_VERSION, VIRTUAL_MACHINE_INSTANCE
from kubevirt_api.pod_layout import (HYPERVISOR_ANNOTATION, NOTIFY_DIR, NOTIFY_SOCKET, PRIVATE_DIR, SOCKETS_DIR,
                                     claim_device, claim_mount, launcher_socket)

Obj = dict[str, Any]

LAUNCHER_IMAGE = "kubevirt-py/virt-launcher:latest"
EXTRA_GRACE_SECONDS = 15                         # time to power off after the guest's own grace

_MIB = 1024 * 1024
_FIXED_OVERHEAD = (80 + 40 + 40) * _MIB          # launcher + libvirtd + QEMU's own memory
_PER_VCPU = 8 * _MIB


def vcpus(vmi: Obj) -> int:
    cpu = (vmi["spec"]["domain"].get("cpu") or {})
    return max(int(cpu.get("sockets") or 1) * int(cpu.get("cores") or 1) * int(cpu.get("threads") or 1), 1)


def guest_memory_bytes(vmi: Obj) -> int:
    domain = vmi["spec"]["domain"]
    resources = domain.get("resources") or {}
    for value in ((domain.get("memory") or {}).get("guest"), (resources.get("requests") or {}).get("memory"),
                  (resources.get("limits") or {}).get("memory")):
        if value is not None:
            return int(parse_quantity(value))
    return 0


def memory_overhead_bytes(vmi: Obj) -> int:
    page_tables = math.ceil(guest_memory_bytes(vmi) / 512)
    return _FIXED_OVERHEAD + page_tables + _PER_VCPU * vcpus(vmi)


def _mebibytes(amount: int) -> str:
    return f"{math.ceil(amount / _MIB)}Mi"


def _resources(vmi: Obj) -> Obj:
    requested = (vmi["spec"]["domain"].get("resources") or {})
    requests = dict(requested.get("requests") or {})
    limits = dict(requested.get("limits") or {})
    overhead = memory_overhead_bytes(vmi)
    requests["memory"] = _mebibytes(guest_memory_bytes(vmi) + overhead)
    if "memory" in limits:
        limits["memory"] = _mebibytes(int(parse_quantity(limits["memory"])) + overhead)
    requests.setdefault("cpu", f"{100 * vcpus(vmi)}m")
    resources: Obj = {"requests": requests}
    if limits:
        resources["limits"] = limits
    return resources


def _claim_volumes(vmi: Obj) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """Each claim as upstream lays it out: a Filesystem claim mounted at
    vmi-disks/<volume>, a Block claim as the device /dev/<volume>."""
    modes = {s.get("name"): (s.get("persistentVolumeClaimInfo") or {}).get("volumeMode")
             for s in (vmi.get("status") or {}).get("volumeStatus") or []}
    volumes: list[Obj] = []
    mounts: list[Obj] = []
    devices: list[Obj] = []
    for volume in vmi["spec"].get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim")
                 or (volume.get("ephemeral") or {}).get("persistentVolumeClaim"))
        if not claim:
            continue
        name = f"vol-{volume['name']}"
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim["claimName"],
                                                                "readOnly": bool(claim.get("readOnly"))}})
        if modes.get(volume["name"]) == "Block":
            devices.append({"name": name, "devicePath": claim_device(volume["name"])})
        else:
            mounts.append({"name": name, "mountPath": claim_mount(volume["name"])})
    return volumes, mounts, devices


def _volumes_and_mounts(vmi: Obj) -> tuple[list[Obj], list[Obj], list[Obj]]:
    # Of the sockets directory shared with virt-handler, only this VMI's own part and the
    # handler's Notify directory: another VMI's launcher and console stay out of reach.
    own_sockets = f"{SOCKETS_DIR}/{vmi['metadata']['uid']}"
    volumes: list[Obj] = [
        {"name": "sockets", "hostPath": {"path": own_sockets, "type": "DirectoryOrCreate"}},
        {"name": "notify", "hostPath": {"path": NOTIFY_DIR, "type": "DirectoryOrCreate"}},
        {"name": "private", "emptyDir": {}},
    ]
    mounts: list[Obj] = [{"name": "sockets", "mountPath": own_sockets},
                         {"name": "notify", "mountPath": NOTIFY_DIR},
                         {"name": "private", "mountPath": PRIVATE_DIR}]
    claim_volumes, claim_mounts, devices = _claim_volumes(vmi)
    return volumes + claim_volumes, mounts + claim_mounts, devices


def _launcher_args(vmi: Obj) -> list[str]:
    meta = vmi["metadata"]
    uid = meta["uid"]
    args = ["--namespace", meta["namespace"], "--name", meta["name"], "--uid", uid,
            "--work-dir", f"{PRIVATE_DIR}/{uid}", "--cmd-socket", launcher_socket(uid),
            "--notify-socket", NOTIFY_SOCKET]
    hypervisor = (meta.get("annotations") or {}).get(HYPERVISOR_ANNOTATION)
    if hypervisor:
        args += ["--hypervisor", hypervisor]
    return args


def launcher_pod(vmi: Obj, image: str = LAUNCHER_IMAGE) -> Obj:
    meta = vmi["metadata"]
    spec = vmi["spec"]
    volumes, mounts, devices = _volumes_and_mounts(vmi)
    pod_labels = {k: v for k, v in (meta.get("labels") or {}).items()}
    pod_labels.update({labels.APP_LABEL: labels.VIRT_LAUNCHER, labels.CREATED_BY_LABEL: meta["uid"]})
    node_selector = dict(spec.get("nodeSelector") or {})
    node_selector[labels.SCHEDULABLE_NODE_LABEL] = "true"
    uid = meta["uid"]
    container: Obj = {
        "name": "compute",
        "image": image,
        "args": _launcher_args(vmi),
        "resources": _resources(vmi),
        "volumeMounts": mounts,
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        # The launcher runs its own libvirtd in its own mount namespace (unshare --mount and
        # tmpfs mounts need CAP_SYS_ADMIN and an unconfined AppArmor profile) and opens
        # /dev/kvm, which no device plugin hands out: on a real node that takes privileged.
        "securityContext": {"privileged": True},
    }
    if devices:
        container["volumeDevices"] = devices
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "generateName": f"virt-launcher-{meta['name']}-", "namespace": meta["namespace"],
            "labels": pod_labels,
            "annotations": {labels.DOMAIN_ANNOTATION: meta["name"]},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": VIRTUAL_MACHINE_INSTANCE.kind,
                                 "name": meta["name"], "uid": uid, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": int(spec.get("terminationGracePeriodSeconds", 30))
            + EXTRA_GRACE_SECONDS,
            "nodeSelector": node_selector,
            "containers": [container],
            "volumes": volumes,
            "automountServiceAccountToken": False,
        },
    }
    for field in ("affinity", "tolerations", "schedulerName", "priorityClassName", "hostname", "subdomain",
                  "topologySpreadConstraints", "dnsPolicy", "dnsConfig"):
        if spec.get(field):
            pod["spec"][field] = copy.deepcopy(spec[field])
    return pod


# --- the migration target pod ---------------------------------------------------------------

MIGRATION_JOB_NAME_ANNOTATION = "kubevirt.io/migrationJobName"   # upstream's, on a target pod
HOSTNAME_TOPOLOGY_KEY = "kubernetes.io/hostname"
# Labels of the VMI that name its nodes: true of the source, false of a target pod.
_NODE_LABELS = (labels.NODE_NAME_LABEL, labels.MIGRATION_TARGET_NODE_LABEL)


def migration_target_pod(vmi: Obj, migration: Obj, image: str = LAUNCHER_IMAGE) -> Obj:
    """The launcher pod a migration starts on another node, as upstream renders it: the
    VMI's own launcher pod (same owner, resources, volumes), marked with the migration's
    UID (label) and name (annotation), kept off every node that runs a launcher of this
    VMI by a required pod anti-affinity on the hostname, with the migration's
    spec.addedNodeSelector, and without a fixed hostname (source and target must differ).

    One difference from upstream: the VMI owns it, but not as its controller until the
    migration succeeds (the migration controller then hands the controller flag from the
    source pod to this one), so that the VMI controller, which follows the VMI's
    controlled pod, never mistakes a target pod that failed or was cancelled, or the
    source pod that exits after the guest left, for the pod its guest runs in."""
    pod = launcher_pod(vmi, image)
    meta = pod["metadata"]
    for owner in meta["ownerReferences"]:
        owner["controller"] = False
    for label in _NODE_LABELS:
        meta["labels"].pop(label, None)
    migration_meta = migration["metadata"]
    meta["labels"][labels.MIGRATION_JOB_LABEL] = migration_meta["uid"]
    meta["annotations"][MIGRATION_JOB_NAME_ANNOTATION] = migration_meta["name"]
    spec = pod["spec"]
    spec.pop("hostname", None)
    added = dict(((migration.get("spec") or {}).get("addedNodeSelector")) or {})
    spec["nodeSelector"] = {**added, **spec["nodeSelector"]}   # the VMI's own selector wins, as upstream
    anti = spec.setdefault("affinity", {}).setdefault("podAntiAffinity", {})
    anti.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append({
        "labelSelector": {"matchLabels": {labels.CREATED_BY_LABEL: vmi["metadata"]["uid"]}},
        "topologyKey": HOSTNAME_TOPOLOGY_KEY,
    })
    return pod
