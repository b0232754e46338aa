"""Which of a ReplicaSet's pods to delete first when it has too many.

The least useful go first, in kube-controller-manager's order of criteria: a pod not
yet on a node before one that is; Pending before Unknown before Running; not ready
before ready; one sharing its node with more of the set's pods before one that is
more alone there (deleting it spreads the rest); ready for a shorter time before
longer; more container restarts before fewer; and the newer before the older.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from local_cluster.workloads.pod_state import condition, created, is_ready, parse_time, phase, restarts

Obj = dict[str, Any]

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _node(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def deletion_order(pods: list[Obj]) -> list[Obj]:
    """pods sorted most expendable first."""
    per_node = Counter(_node(p) for p in pods if _node(p))

    def rank(pod: Obj) -> tuple[Any, ...]:
        node, ready = _node(pod), is_ready(pod)
        ready_since = parse_time((condition(pod, "Ready") or {}).get("lastTransitionTime")) if ready else None
        return (
            1 if node else 0,
            _PHASE_RANK.get(phase(pod), 0),
            1 if ready else 0,
            -per_node[node] if node else 0,
            -ready_since.timestamp() if ready_since else 0.0,
            -restarts(pod),
            -created(pod).timestamp(),
        )

    return sorted(pods, key=rank)
