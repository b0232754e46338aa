"""Which nodes can take a pod, and why the others cannot.

Checks run in kube-scheduler's order and a node is reported under the first one it
fails (all missing resources are reported together), so the reasons add up the way
kube-scheduler's "0/N nodes are available" message does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from local_cluster.scheduler import node_affinity, taints
from local_cluster.scheduler.pod_affinity import InterPodAffinity
from local_cluster.scheduler.resources import PODS, Resources, allocatable, pod_requests
from local_cluster.scheduler.snapshot import NodeInfo, Snapshot

Obj = dict[str, Any]

NODE_UNSCHEDULABLE = "node(s) were unschedulable"
SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
TOO_MANY_PODS = "Too many pods"


def untolerated_taint_reason(taint: Obj) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


@dataclass
class PodFacts:
    """What the checks need from a pod, worked out once per scheduling attempt."""

    pod: Obj
    snapshot: Snapshot
    tolerations: list[Obj] = field(init=False)
    requests: Resources = field(init=False)
    inter_pod: InterPodAffinity = field(init=False)

    def __post_init__(self) -> None:
        self.tolerations = (self.pod.get("spec") or {}).get("tolerations") or []
        self.requests = pod_requests(self.pod)
        self.inter_pod = InterPodAffinity(self.pod, self.snapshot)


def node_failures(facts: PodFacts, info: NodeInfo) -> list[str]:
    """Why the pod cannot go to this node; empty when it can."""
    node = info.node
    if (node.get("spec") or {}).get("unschedulable") and not taints.tolerates_unschedulable(facts.tolerations):
        return [NODE_UNSCHEDULABLE]
    taint = taints.untolerated_taint(node, facts.tolerations)
    if taint is not None:
        return [untolerated_taint_reason(taint)]
    if not node_affinity.required_matches(facts.pod, node):
        return [SELECTOR_MISMATCH]
    missing = resource_failures(facts.requests, info)
    if missing:
        return missing
    reason = facts.inter_pod.failure(node)
    return [reason] if reason else []


def resource_failures(requests: Resources, info: NodeInfo) -> list[str]:
    capacity = allocatable(info.node)
    reasons = []
    # Nodes made by hand may not state a pod limit: treat that as no limit.
    if PODS in capacity and len(info.pods) + 1 > capacity[PODS]:
        reasons.append(TOO_MANY_PODS)
    for name in sorted(requests):
        wanted = requests[name]
        if name == PODS or wanted <= 0:
            continue
        free = capacity.get(name, Decimal(0)) - info.requested.get(name, Decimal(0))
        if wanted > free:
            reasons.append(f"Insufficient {name}")
    return reasons


def feasible_nodes(facts: PodFacts) -> tuple[list[NodeInfo], dict[str, list[str]]]:
    """The nodes that can take the pod, and the reasons of those that cannot."""
    feasible: list[NodeInfo] = []
    failures: dict[str, list[str]] = {}
    for info in facts.snapshot.nodes:
        reasons = node_failures(facts, info)
        if reasons:
            failures[info.name] = reasons
        else:
            feasible.append(info)
    return feasible, failures
