"""Required inter-pod affinity and anti-affinity.

A term names a group of pods (label selector within some namespaces) and a node
label (the topology key); nodes sharing that label's value form one domain. The
pod's affinity needs a domain holding a pod of the group, its anti-affinity a
domain holding none, and pods already placed with anti-affinity against the new pod
keep it out of their domains. Everything is worked out once per pod and snapshot,
then each node is a few set lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local_cluster.scheduler.labels import labels_of, selector_matches
from local_cluster.scheduler.snapshot import NodeInfo, Snapshot

Obj = dict[str, Any]

HOSTNAME = "kubernetes.io/hostname"
AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"


@dataclass(frozen=True)
class Term:
    selector: Obj | None
    namespaces: frozenset[str]
    namespace_selector: Obj | None
    topology_key: str

    def selects(self, pod: Obj, namespace_labels: dict[str, dict[str, str]]) -> bool:
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        in_scope = namespace in self.namespaces or (
            self.namespace_selector is not None
            and selector_matches(self.namespace_selector, namespace_labels.get(namespace, {})))
        return in_scope and selector_matches(self.selector, labels_of(pod))


def required_terms(pod: Obj, kind: str) -> list[Term]:
    """kind is podAffinity or podAntiAffinity."""
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    own_namespace = (pod.get("metadata") or {}).get("namespace", "")
    terms = []
    for raw in affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        namespaces = frozenset(raw.get("namespaces") or [])
        namespace_selector = raw.get("namespaceSelector")
        if not namespaces and namespace_selector is None:
            namespaces = frozenset({own_namespace})  # no scope given: the pod's own namespace
        terms.append(Term(raw.get("labelSelector"), namespaces, namespace_selector, raw.get("topologyKey", "")))
    return terms


def topology_value(node: Obj, key: str) -> str | None:
    labels = labels_of(node)
    if key in labels:
        return labels[key]
    if key == HOSTNAME:
        # Kubelets always set the hostname label; nodes made by hand may not, and the
        # node name is what the kubelet would have put there.
        return str((node.get("metadata") or {}).get("name", "")) or None
    return None


class InterPodAffinity:
    """The required inter-pod rules for one pod against one snapshot."""

    def __init__(self, pod: Obj, snapshot: Snapshot) -> None:
        labels_by_ns = snapshot.namespace_labels
        self._affinity = required_terms(pod, "podAffinity")
        self._anti = required_terms(pod, "podAntiAffinity")
        # Per term: the topology values of domains holding a pod the term selects.
        self._affinity_domains: list[set[str]] = [set() for _ in self._affinity]
        self._anti_domains: list[set[str]] = [set() for _ in self._anti]
        # (topology key, value) domains that existing pods' anti-affinity closes to this pod.
        self._closed: set[tuple[str, str]] = set()
        for placed, info in snapshot.placed_pods():
            self._collect(pod, placed, info, labels_by_ns)
        self._first_of_group = not any(self._affinity_domains) and all(
            term.selects(pod, labels_by_ns) for term in self._affinity)

    def _collect(self, pod: Obj, placed: Obj, info: NodeInfo, labels_by_ns: dict[str, dict[str, str]]) -> None:
        for index, term in enumerate(self._affinity):
            value = topology_value(info.node, term.topology_key)
            if value is not None and term.selects(placed, labels_by_ns):
                self._affinity_domains[index].add(value)
        for index, term in enumerate(self._anti):
            value = topology_value(info.node, term.topology_key)
            if value is not None and term.selects(placed, labels_by_ns):
                self._anti_domains[index].add(value)
        for term in required_terms(placed, "podAntiAffinity"):
            value = topology_value(info.node, term.topology_key)
            if value is not None and term.selects(pod, labels_by_ns):
                self._closed.add((term.topology_key, value))

    def failure(self, node: Obj) -> str | None:
        """Why the node breaks the rules, or None when it keeps them."""
        if not self._affinity_ok(node):
            return AFFINITY_MISMATCH
        for index, term in enumerate(self._anti):
            value = topology_value(node, term.topology_key)
            if value is not None and value in self._anti_domains[index]:
                return ANTI_AFFINITY_MISMATCH
        if self._closed and any((key, value) in self._closed for key, value in self._node_domains(node)):
            return EXISTING_ANTI_AFFINITY
        return None

    def _affinity_ok(self, node: Obj) -> bool:
        if not self._affinity:
            return True
        values = [topology_value(node, term.topology_key) for term in self._affinity]
        if any(value is None for value in values):
            return False
        if all(value in domains for value, domains in zip(values, self._affinity_domains, strict=True)):
            return True
        # The first pod of a group that wants to be with its own kind has nobody to
        # join yet; refusing it would keep the whole group pending forever.
        return self._first_of_group

    def _node_domains(self, node: Obj) -> list[tuple[str, str]]:
        keys = {key for key, _ in self._closed}
        return [(key, value) for key in keys if (value := topology_value(node, key)) is not None]
