"""What a domain's state means for its VMI: phase and conditions, as upstream reports them."""

from __future__ import annotations

from typing import Any

from kube_client.timestamps import now_text
from kubevirt_api.migratability import migratability
from kubevirt_api.phases import VMIConditionType, VMIPhase

Obj = dict[str, Any]

# Domain states in which the guest still exists and counts as running for the VMI.
_ALIVE = {"Running", "Paused", "Blocked", "PMSuspended", "Shutdown"}


def phase_for(state: str, reason: str) -> VMIPhase:
    if state in _ALIVE:
        return VMIPhase.RUNNING
    if state == "Shutoff":
        # The guest powered itself off, or was stopped on request: a clean end.
        return VMIPhase.SUCCEEDED if reason in ("Shutdown", "Destroyed", "Saved") else VMIPhase.FAILED
    if state == "Crashed":
        return VMIPhase.FAILED
    return VMIPhase.SCHEDULED  # NoState: defined, not started yet


def _condition(kind: VMIConditionType, status: bool, reason: str = "", message: str = "") -> Obj:
    condition: Obj = {"type": kind.value, "status": "True" if status else "False", "lastProbeTime": None,
                      "lastTransitionTime": now_text()}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def merge_conditions(current: list[Obj], updates: list[Obj]) -> list[Obj]:
    """Replace conditions by type, keeping lastTransitionTime when the status did not change."""
    by_type = {c.get("type"): c for c in current}
    for update in updates:
        previous = by_type.get(update["type"])
        if previous is not None and previous.get("status") == update["status"]:
            update = {**update, "lastTransitionTime": previous.get("lastTransitionTime", update["lastTransitionTime"])}
        by_type[update["type"]] = update
    return list(by_type.values())


def _interfaces(reported: list[Obj]) -> list[Obj]:
    interfaces = []
    for nic in reported:
        entry: Obj = {"name": nic.get("name", ""), "mac": nic.get("mac", ""), "infoSource": "domain"}
        if nic.get("ipAddress"):
            entry.update({"ipAddress": nic["ipAddress"], "ipAddresses": [nic["ipAddress"]]})
        interfaces.append(entry)
    return interfaces


def status_update(vmi: Obj, state: str, reason: str, interfaces: list[Obj] | None = None) -> Obj:
    """The VMI status after its domain reported (state, reason) and, when known, its NICs."""
    status = dict(vmi.get("status") or {})
    if state == "Shutoff" and reason == "Migrated":
        return status  # the guest lives on in the migration's target, which reports it from now on
    phase = phase_for(state, reason)
    if VMIPhase(status.get("phase", "")).is_final and phase != VMIPhase(status["phase"]):
        return status  # a finished VMI never comes back to life
    paused = state == "Paused"
    ready = phase == VMIPhase.RUNNING and not paused
    updates = [_condition(VMIConditionType.READY, ready, "" if ready else "Paused" if paused else "GuestNotRunning")]
    if phase == VMIPhase.RUNNING:
        answer = migratability(vmi)
        updates.append(_condition(VMIConditionType.LIVE_MIGRATABLE, answer.migratable, answer.reason,
                                  answer.message))
    if paused:
        updates.append(_condition(VMIConditionType.PAUSED, True, "PausedByUser" if reason == "User" else reason,
                                  "VMI was paused by user" if reason == "User" else f"the domain is paused ({reason})"))
    conditions = merge_conditions(status.get("conditions") or [], updates)
    if not paused:
        conditions = [c for c in conditions if c.get("type") != VMIConditionType.PAUSED.value]
    status["conditions"] = conditions
    if status.get("phase") != phase.value:
        status["phase"] = phase.value
        transitions = list(status.get("phaseTransitionTimestamps") or [])
        transitions.append({"phase": phase.value, "phaseTransitionTimestamp": now_text()})
        status["phaseTransitionTimestamps"] = transitions
    if interfaces is not None and phase == VMIPhase.RUNNING:
        status["interfaces"] = _interfaces(interfaces)
    if phase == VMIPhase.FAILED:
        status["reason"] = f"domain {state.lower()} ({reason})"
    return status
