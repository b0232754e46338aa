"""The Node object a kubelet registers and keeps fresh, and its Lease heartbeat."""

from __future__ import annotations

import datetime
import os
import platform
from typing import Any

from kubernetes import client

from kube_client.timestamps import now_text

Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
KUBELET_VERSION = "v1.32.0+kubevirt-py"


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _memory_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def capacity() -> Obj:
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{_memory_bytes() // 1024}Ki", "pods": "110",
            "ephemeral-storage": "100Gi"}


def node_object(name: str, host_ip: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", **(labels or {})}},
        "spec": {}}


def ready_status(host_ip: str, ready: bool, reason: str, message: str, since: str | None = None,
                 kubelet_port: int = 0) -> Obj:
    now = now_text()
    uname = platform.uname()
    return {
        "capacity": capacity(), "allocatable": capacity(),
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "reason": reason, "message": message,
             "lastHeartbeatTime": now, "lastTransitionTime": since or now},
            *[{"type": kind, "status": "False", "reason": f"KubeletHasSufficient{kind.removesuffix('Pressure')}",
               "message": f"kubelet has no {kind}", "lastHeartbeatTime": now, "lastTransitionTime": since or now}
              for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")],
        ],
        "addresses": [{"type": "InternalIP", "address": host_ip}, {"type": "Hostname", "address": host_ip}],
        "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                     "operatingSystem": "linux", "architecture": "amd64", "osImage": _os_image(),
                     "kernelVersion": uname.release, "containerRuntimeVersion": "kubevirt-py-process://0.1.0",
                     "machineID": "", "systemUUID": "", "bootID": ""},
        # Where the API server reaches this kubelet's server (pods/log); 0: not served.
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
    }


def _os_image() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def register(core: client.CoreV1Api, name: str, host_ip: str) -> None:
    try:
        core.create_node(node_object(name, host_ip))
    except client.ApiException as error:
        if error.status != 409:
            raise


def report(core: client.CoreV1Api, name: str, host_ip: str, ready: bool, reason: str, message: str,
           since: str | None, kubelet_port: int = 0) -> None:
    core.patch_node_status(name, {"status": ready_status(host_ip, ready, reason, message, since, kubelet_port)})


def renew_lease(coordination: client.CoordinationV1Api, name: str) -> None:
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                     "renewTime": _micro_now()}}
    try:
        coordination.patch_namespaced_lease(name, LEASE_NAMESPACE, {"spec": body["spec"]})
    except client.ApiException as error:
        if error.status != 404:
            raise
        coordination.create_namespaced_lease(LEASE_NAMESPACE, body)
