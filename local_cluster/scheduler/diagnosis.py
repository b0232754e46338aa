"""The message a pod that fits nowhere gets, in kube-scheduler's wording and order."""

from __future__ import annotations

from collections import Counter


def unschedulable_message(node_count: int, failures: dict[str, list[str]]) -> str:
    if node_count == 0:
        return "0/0 nodes are available: no nodes available to schedule pods."
    counts = Counter(reason for reasons in failures.values() for reason in reasons)
    # Sorted as whole "<count> <reason>" strings, which is how kube-scheduler orders them.
    parts = sorted(f"{count} {reason}" for reason, count in counts.items())
    return f"0/{node_count} nodes are available: {', '.join(parts)}."
