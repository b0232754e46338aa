"""One scheduling cycle's view of the cluster: each node with the pods it holds.

Pods count against a node from the moment they are bound, and pods this scheduler
has just bound count before the watch reports the binding ("assumed"), so two pods
scheduled back to back never both take the last free slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from local_cluster.scheduler.labels import labels_of
from kube_client.rawapi import object_key
from local_cluster.scheduler.resources import (Resources, add_into, is_terminated, pod_requests,
                                               with_non_zero_defaults)

Obj = dict[str, Any]


@dataclass
class NodeInfo:
    node: Obj
    pods: list[Obj] = field(default_factory=list)
    requested: Resources = field(default_factory=dict)
    # Requests with the non-zero defaults, for scoring.
    scored: Resources = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str((self.node.get("metadata") or {}).get("name", ""))

    def add(self, pod: Obj) -> None:
        requests = pod_requests(pod)
        self.pods.append(pod)
        add_into(self.requested, requests)
        add_into(self.scored, with_non_zero_defaults(requests))


@dataclass
class Snapshot:
    nodes: list[NodeInfo]
    namespace_labels: dict[str, dict[str, str]]

    def __post_init__(self) -> None:
        self._by_name = {info.name: info for info in self.nodes}

    def node(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def place(self, pod: Obj, node_name: str) -> None:
        """Count a pod just bound to node_name, before the watch shows it bound."""
        info = self._by_name.get(node_name)
        if info is not None:
            info.add(bound_copy(pod, node_name))

    def placed_pods(self) -> Iterator[tuple[Obj, NodeInfo]]:
        for info in self.nodes:
            for pod in info.pods:
                yield pod, info


def bound_copy(pod: Obj, node_name: str) -> Obj:
    placed = dict(pod)
    placed["spec"] = {**(pod.get("spec") or {}), "nodeName": node_name}
    return placed


def build_snapshot(nodes: Iterable[Obj], pods: Iterable[Obj], assumed: dict[str, str],
                   namespaces: Iterable[Obj]) -> Snapshot:
    infos = [NodeInfo(node) for node in nodes]
    snapshot = Snapshot(infos, {(ns.get("metadata") or {}).get("name", ""): labels_of(ns) for ns in namespaces})
    for pod in pods:
        if is_terminated(pod):
            continue
        bound_to = (pod.get("spec") or {}).get("nodeName") or ""
        if bound_to:
            info = snapshot.node(bound_to)
            if info is not None:
                info.add(pod)
        elif object_key(pod) in assumed:
            snapshot.place(pod, assumed[object_key(pod)])
    return snapshot
