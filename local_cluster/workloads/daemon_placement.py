"""Which nodes a DaemonSet runs on, and how its pod is tied to one node.

A node should run the daemon pod when the template's nodeSelector and required node
affinity match it and the pod tolerates its NoSchedule and NoExecute taints; a pod
already there may keep running as long as only NoSchedule taints are untolerated
(NoSchedule keeps new pods off, NoExecute evicts). Readiness is not looked at
directly, exactly as upstream: the taints a node's conditions imply are what count,
and since nothing here runs the node lifecycle controller that writes them, they are
derived from the Ready condition the same way our scheduler derives them. So a node
that is not Ready keeps its daemon pods but gets no new ones (unless the template
tolerates not-ready), and the controller never makes a pod the scheduler would refuse.

Daemon pods tolerate what upstream makes them tolerate, whatever the template says:
not-ready and unreachable nodes (NoExecute, so they survive a node problem), pressure
conditions and cordoned nodes (NoSchedule), and, for host-network pods, a node whose
network is not set up yet. They are placed by the scheduler like any pod: the
controller replaces the template's required node affinity with one term that only
matches the node's name (metadata.name In [node]), and the scheduler binds it there.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from local_cluster.scheduler import node_affinity
from local_cluster.scheduler.taints import NO_EXECUTE, scheduling_taints, tolerates

Obj = dict[str, Any]

_EXISTS = "Exists"
_ALWAYS_TOLERATED = (
    ("node.kubernetes.io/not-ready", NO_EXECUTE),
    ("node.kubernetes.io/unreachable", NO_EXECUTE),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
_HOST_NETWORK_TOLERATED = (("node.kubernetes.io/network-unavailable", "NoSchedule"),)
NAME_FIELD = "metadata.name"


@dataclass(frozen=True)
class Placement:
    should_run: bool
    # A pod already on the node may stay (only NoSchedule taints are untolerated).
    may_continue: bool


def daemon_pod_spec(template_spec: Obj) -> Obj:
    """The template's pod spec with the daemon tolerations added (those it lacks)."""
    spec = copy.deepcopy(template_spec)
    tolerations = list(spec.get("tolerations") or [])
    wanted = _ALWAYS_TOLERATED + (_HOST_NETWORK_TOLERATED if spec.get("hostNetwork") else ())
    for key, effect in wanted:
        toleration = {"key": key, "operator": _EXISTS, "effect": effect}
        if toleration not in tolerations:
            tolerations.append(toleration)
    spec["tolerations"] = tolerations
    return spec


def placement(template_spec: Obj, node: Obj) -> Placement:
    pod = {"spec": daemon_pod_spec(template_spec)}
    if not node_affinity.required_matches(pod, node):
        return Placement(False, False)
    tolerations = pod["spec"]["tolerations"]
    untolerated = [t for t in scheduling_taints(node) if not tolerates(tolerations, t)]
    if not untolerated:
        return Placement(True, True)
    return Placement(False, not any(t.get("effect") == NO_EXECUTE for t in untolerated))


def pinned_spec(template_spec: Obj, node_name: str) -> Obj:
    """The daemon pod spec for one node: tolerations added, required node affinity
    replaced by the node's name (the template's terms were already checked against
    the node by placement(); preferred terms are kept, harmless on a single node)."""
    spec = daemon_pod_spec(template_spec)
    affinity = spec.setdefault("affinity", {})
    node_aff = affinity.get("nodeAffinity") or {}
    node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": [node_name]}]}]}
    affinity["nodeAffinity"] = node_aff
    return spec


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is on, or is pinned to while it waits for the scheduler."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            values = field.get("values") or []
            if field.get("key") == NAME_FIELD and field.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None
