"""What the workload controllers need to know about a pod's life: whether it still
counts, whether it is ready, and whether it has been ready long enough to count as
available (minReadySeconds), judged the way kube-controller-manager judges it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

SUCCEEDED, FAILED, RUNNING, PENDING = "Succeeded", "Failed", "Running", "Pending"


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp as the API writes it (with or without fractional seconds)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminal(pod: Obj) -> bool:
    """A pod that will never run again: its containers finished for good."""
    return phase(pod) in (SUCCEEDED, FAILED)


def is_terminating(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Counts towards a workload's replicas: neither finished nor on its way out."""
    return not is_terminal(pod) and not is_terminating(pod)


def condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def is_ready(pod: Obj) -> bool:
    ready = condition(pod, "Ready")
    return ready is not None and ready.get("status") == "True"


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: datetime) -> float | None:
    """0 when the pod is available now, the seconds left when it is ready but not yet for
    long enough, None when it is not ready at all."""
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_time((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    if since is None:
        # Without a transition time there is no telling how long it has been ready;
        # upstream treats that as not (yet) available, and so do we.
        return float(min_ready_seconds)
    left = min_ready_seconds - (now - since).total_seconds()
    return max(left, 0.0)


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def restarts(pod: Obj) -> int:
    return sum(int(s.get("restartCount") or 0) for s in (pod.get("status") or {}).get("containerStatuses") or [])


def created(obj: Obj) -> datetime:
    """The creation time; objects without one sort as the oldest."""
    return parse_time(meta(obj).get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)
