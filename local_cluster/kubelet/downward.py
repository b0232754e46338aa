"""The downward API: pod fields and container resources as strings, shared by
environment variables (valueFrom) and downwardAPI/projected volumes."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from kube_client.quantity import exact_quantity

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


class DownwardError(ValueError):
    pass


@dataclass(frozen=True)
class PodAddresses:
    """What the node knows about a pod that the pod object may not carry yet."""

    pod_ip: str
    host_ip: str
    node_name: str


def _map_lines(values: dict[str, str]) -> str:
    # key="value" lines, sorted, values quoted: the format downwardAPI files use.
    return "\n".join(f"{k}={json.dumps(values[k])}" for k in sorted(values))


def pod_field(pod: dict[str, Any], field_path: str, addresses: PodAddresses) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or addresses.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName") or spec.get("serviceAccount") or "default",
        "status.podIP": addresses.pod_ip,
        "status.podIPs": addresses.pod_ip,
        "status.hostIP": addresses.host_ip,
        "status.hostIPs": addresses.host_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    if field_path in ("metadata.labels", "metadata.annotations"):
        return _map_lines(meta.get(field_path.split(".")[1]) or {})
    match = _SUBSCRIPT.match(field_path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise DownwardError(f"unsupported fieldPath {field_path!r}")


def _node_capacity(resource: str) -> Fraction:
    # Every pod of this node runs on this machine, so the node's allocatable is the host's.
    if resource == "cpu":
        return Fraction(os.cpu_count() or 1)
    if resource == "memory":
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return Fraction(int(line.split()[1]) * 1024)
    if resource == "ephemeral-storage":
        st = os.statvfs("/")
        return Fraction(st.f_blocks * st.f_frsize)
    raise DownwardError(f"unsupported resource {resource!r}")


def resource_field(pod: dict[str, Any], container_name: str, resource: str, divisor: object = None) -> str:
    """limits.cpu, requests.memory, ...: the value divided by divisor, rounded up."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise DownwardError(f"unsupported resource {resource!r}")
    container = next(
        (c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container_name), None
    )
    if container is None:
        raise DownwardError(f"container {container_name!r} not found for resource {resource!r}")
    resources = container.get("resources") or {}
    limit = (resources.get("limits") or {}).get(name)
    request = (resources.get("requests") or {}).get(name)
    if kind == "limits":
        value = exact_quantity(limit) if limit is not None else _node_capacity(name)
    else:
        chosen = request if request is not None else limit
        value = exact_quantity(chosen) if chosen is not None else Fraction(0)
    scale = exact_quantity(divisor if divisor not in (None, "", 0) else "1")
    if scale <= 0:
        raise DownwardError(f"divisor for {resource!r} must be positive")
    return str(math.ceil(value / scale))
