"""Status conditions of workloads (ReplicaFailure, Available, Progressing), updated the
way kube-controller-manager updates them: a condition keeps its lastTransitionTime
while its status stays the same, and setting one that already says the same thing
(status and reason) leaves it untouched, so a status write happens only on change."""

from __future__ import annotations

from typing import Any

from kube_client.timestamps import now_text

Obj = dict[str, Any]


def find(conditions: list[Obj], kind: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def without(conditions: list[Obj], kind: str) -> list[Obj]:
    return [c for c in conditions if c.get("type") != kind]


def new_condition(kind: str, status: str, reason: str, message: str, *, with_update_time: bool) -> Obj:
    """ReplicaSet conditions have no lastUpdateTime; Deployment conditions do."""
    now = now_text()
    condition: Obj = {"type": kind, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}
    if with_update_time:
        condition["lastUpdateTime"] = now
    return condition


def set_condition(conditions: list[Obj], condition: Obj) -> list[Obj]:
    current = find(conditions, condition["type"])
    if current is not None and (current.get("status"), current.get("reason")) == (
            condition["status"], condition["reason"]):
        return conditions
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    return [*without(conditions, condition["type"]), condition]
