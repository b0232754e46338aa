"""Taints and tolerations, including the taints a node's conditions imply.

Upstream, the node lifecycle controller turns a node that is not Ready into a
node.kubernetes.io/not-ready (or unreachable) taint and the scheduler only looks at
taints. Nothing here runs that controller, so the scheduler derives those taints
from the Ready condition itself: the effect is the same, including for pods that
tolerate them.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "NoExecute"


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    return any(_toleration_matches(t, taint) for t in tolerations)


def _toleration_matches(toleration: Obj, taint: Obj) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return operator == "Exists"  # an empty key only makes sense as "tolerate everything"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def scheduling_taints(node: Obj) -> list[Obj]:
    """The taints that keep pods off the node: NoSchedule and NoExecute, plus readiness."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or []
              if t.get("effect") in (NO_SCHEDULE, NO_EXECUTE)]
    implied = _readiness_taint(node)
    if implied is not None and not any(t.get("key") == implied["key"] for t in taints):
        taints.append(implied)
    return taints


def _readiness_taint(node: Obj) -> Obj | None:
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = (ready or {}).get("status", "Unknown")
    if status == "True":
        return None
    return {"key": NOT_READY if status == "False" else UNREACHABLE, "effect": NO_SCHEDULE}


def untolerated_taint(node: Obj, tolerations: list[Obj]) -> Obj | None:
    return next((t for t in scheduling_taints(node) if not tolerates(tolerations, t)), None)


def tolerates_unschedulable(tolerations: list[Obj]) -> bool:
    return tolerates(tolerations, {"key": UNSCHEDULABLE, "effect": NO_SCHEDULE})
