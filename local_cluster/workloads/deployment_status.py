"""A Deployment's status: counts summed over its ReplicaSets, and the Available and
Progressing conditions that `kubectl rollout status` and users wait on.

Available says whether at least replicas - maxUnavailable pods are available.
Progressing follows the rollout: NewReplicaSetCreated or FoundNewReplicaSet when it
starts, ReplicaSetUpdated (with a fresh lastUpdateTime) whenever it makes progress,
NewReplicaSetAvailable once complete, and ProgressDeadlineExceeded (status False)
when no progress was made for progressDeadlineSeconds. A paused Deployment says so
(DeploymentPaused, then DeploymentResumed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from local_cluster.workloads.conditions import find, new_condition, set_condition, without
from local_cluster.workloads.pod_state import meta, parse_time
from local_cluster.workloads.rollout import actual, available, desired, ready

Obj = dict[str, Any]

AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
MIN_AVAILABLE, MIN_UNAVAILABLE = "MinimumReplicasAvailable", "MinimumReplicasUnavailable"
NEW_RS_CREATED, FOUND_NEW_RS = "NewReplicaSetCreated", "FoundNewReplicaSet"
RS_UPDATED, NEW_RS_AVAILABLE, TIMED_OUT = "ReplicaSetUpdated", "NewReplicaSetAvailable", "ProgressDeadlineExceeded"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"

DEFAULT_PROGRESS_DEADLINE = 600
# The API's way of saying "no deadline".
_NO_DEADLINE = 2**31 - 1


def condition(kind: str, status: str, reason: str, message: str) -> Obj:
    return new_condition(kind, status, reason, message, with_update_time=True)


def progress_deadline(deployment: Obj) -> int | None:
    seconds = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    if seconds is None:
        return DEFAULT_PROGRESS_DEADLINE
    return None if int(seconds) == _NO_DEADLINE else int(seconds)


def calculate_status(deployment: Obj, sets: list[Obj], new_rs: Obj | None, max_unavailable: int) -> Obj:
    """Counts and the Available condition; other conditions carried over as they are."""
    previous = deployment.get("status") or {}
    available_count = sum(available(rs) for rs in sets)
    counts = {
        "observedGeneration": int(meta(deployment).get("generation") or 0),
        "replicas": sum(actual(rs) for rs in sets),
        "updatedReplicas": actual(new_rs),
        "readyReplicas": sum(ready(rs) for rs in sets),
        "availableReplicas": available_count,
        "unavailableReplicas": max(0, sum(desired(rs) for rs in sets) - available_count),
        "collisionCount": int(previous.get("collisionCount") or 0),
    }
    status: Obj = {k: v for k, v in counts.items() if v}  # all omitted when zero, as upstream
    conditions = list(previous.get("conditions") or [])
    if available_count >= desired(deployment) - max_unavailable:
        conditions = set_condition(conditions, condition(AVAILABLE, "True", MIN_AVAILABLE,
                                                         "Deployment has minimum availability."))
    else:
        conditions = set_condition(conditions, condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                                         "Deployment does not have minimum availability."))
    status["conditions"] = conditions
    return status


def is_complete(deployment: Obj, status: Obj) -> bool:
    replicas = desired(deployment)
    return (int(status.get("updatedReplicas") or 0) == replicas and int(status.get("replicas") or 0) == replicas
            and int(status.get("availableReplicas") or 0) == replicas
            and int(status.get("observedGeneration") or 0) >= int(meta(deployment).get("generation") or 0))


def _progressed(before: Obj, after: Obj) -> bool:
    def count(status: Obj, field: str) -> int:
        return int(status.get(field) or 0)
    old_before = count(before, "replicas") - count(before, "updatedReplicas")
    old_after = count(after, "replicas") - count(after, "updatedReplicas")
    return (count(after, "updatedReplicas") > count(before, "updatedReplicas") or old_after < old_before
            or count(after, "readyReplicas") > count(before, "readyReplicas")
            or count(after, "availableReplicas") > count(before, "availableReplicas"))


def _timed_out(deadline: int, progressing: Obj | None, now: datetime) -> bool:
    if progressing is None or progressing.get("reason") == NEW_RS_AVAILABLE:
        return False
    if progressing.get("reason") == TIMED_OUT:
        return True
    since = parse_time(progressing.get("lastUpdateTime"))
    return since is not None and since + timedelta(seconds=deadline) < now


def with_rollout_conditions(deployment: Obj, status: Obj, new_rs: Obj | None, sets: list[Obj],
                            now: datetime) -> Obj:
    """status with Progressing (and ReplicaFailure, copied from a set that has it) updated."""
    conditions = list(status.get("conditions") or [])
    deadline = progress_deadline(deployment)
    progressing = find(conditions, PROGRESSING)
    name = meta(new_rs).get("name", "") if new_rs is not None else ""
    if deadline is None:
        conditions = without(conditions, PROGRESSING)
    elif not (status.get("replicas") == status.get("updatedReplicas") and progressing is not None
              and progressing.get("reason") == NEW_RS_AVAILABLE):
        if is_complete(deployment, status):
            conditions = set_condition(conditions, condition(
                PROGRESSING, "True", NEW_RS_AVAILABLE, f'ReplicaSet "{name}" has successfully progressed.'))
        elif _progressed(deployment.get("status") or {}, status):
            fresh = condition(PROGRESSING, "True", RS_UPDATED, f'ReplicaSet "{name}" is progressing.')
            if progressing is not None and progressing.get("status") == "True":
                fresh["lastTransitionTime"] = progressing.get("lastTransitionTime")
            # Replaced even when the reason is the same: lastUpdateTime marks the progress.
            conditions = [*without(conditions, PROGRESSING), fresh]
        elif _timed_out(deadline, progressing, now):
            conditions = set_condition(conditions, condition(
                PROGRESSING, "False", TIMED_OUT, f'ReplicaSet "{name}" has timed out progressing.'))
    failure = next((c for rs in sets for c in (rs.get("status") or {}).get("conditions") or []
                    if c.get("type") == REPLICA_FAILURE), None)
    if failure is not None:
        conditions = set_condition(conditions, condition(REPLICA_FAILURE, str(failure.get("status", "True")),
                                                         str(failure.get("reason", "")),
                                                         str(failure.get("message", ""))))
    else:
        conditions = without(conditions, REPLICA_FAILURE)
    return {**status, "conditions": conditions}


def with_paused_condition(deployment: Obj) -> list[Obj] | None:
    """The conditions once pausing or resuming is recorded; None when nothing to record."""
    if progress_deadline(deployment) is None:
        return None
    conditions = list((deployment.get("status") or {}).get("conditions") or [])
    progressing = find(conditions, PROGRESSING)
    paused = bool((deployment.get("spec") or {}).get("paused"))
    reason = (progressing or {}).get("reason")
    if paused and reason != PAUSED:
        return set_condition(conditions, condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused"))
    if not paused and reason == PAUSED:
        return set_condition(conditions, condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed"))
    return None


def seconds_to_deadline(deployment: Obj, status: Obj, now: datetime) -> float | None:
    """When to look again to notice a rollout that stops progressing (None: no need)."""
    deadline = progress_deadline(deployment)
    progressing = find(status.get("conditions") or [], PROGRESSING)
    if (deadline is None or progressing is None or progressing.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT, PAUSED)
            or is_complete(deployment, status)):
        return None
    since = parse_time(progressing.get("lastUpdateTime"))
    if since is None:
        return None
    return max(0.0, (since + timedelta(seconds=deadline) - now).total_seconds()) + 1.0
