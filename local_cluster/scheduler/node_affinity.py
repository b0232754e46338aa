"""nodeSelector and spec.affinity.nodeAffinity: the required terms filter, the preferred ones score."""

from __future__ import annotations

from typing import Any

from local_cluster.scheduler.labels import labels_of, requirement_matches

Obj = dict[str, Any]


def _node_affinity(pod: Obj) -> Obj:
    return ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}


def term_matches(term: Obj, node: Obj) -> bool:
    """A NodeSelectorTerm: its requirements are ANDed; a term with none matches no node."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = labels_of(node)
    node_fields = {"metadata.name": str((node.get("metadata") or {}).get("name", ""))}
    return (all(requirement_matches(e, labels) for e in expressions)
            and all(_field_requirement_matches(f, node_fields) for f in fields))


def _field_requirement_matches(requirement: Obj, node_fields: dict[str, str]) -> bool:
    # Only metadata.name is a selectable node field, and only with In / NotIn.
    if requirement.get("key") != "metadata.name" or requirement.get("operator") not in ("In", "NotIn"):
        return False
    return requirement_matches(requirement, node_fields)


def required_matches(pod: Obj, node: Obj) -> bool:
    """nodeSelector AND the required node affinity (whose terms are ORed)."""
    labels = labels_of(node)
    for key, value in ((pod.get("spec") or {}).get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


def preference_score(pod: Obj, node: Obj) -> int:
    """The summed weights of the preferred terms the node matches."""
    preferred = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
    return sum(int(p.get("weight") or 0) for p in preferred if term_matches(p.get("preference") or {}, node))
