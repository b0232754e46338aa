"""The JSON patches behind start, stop and restart, as upstream writes them: either the
VM's run strategy (spec) or a state change request for virt-controller (status)."""

from __future__ import annotations

from typing import Any

from kubevirt_api.phases import RunStrategy
from virt_api.subresources.status import VM, conflict

Obj = dict[str, Any]

START = "Start"
STOP = "Stop"
# StartOptions.paused travels in the request's data, as upstream's startPaused key.
START_PAUSED_KEY = "startPaused"


def start_request(paused: bool = False) -> Obj:
    return {"action": START, **({"data": {START_PAUSED_KEY: "true"}} if paused else {})}


def stop_request(vmi_uid: str) -> Obj:
    """Bound to the VMI that runs now: a newer VMI must not be stopped by an old request."""
    return {"action": STOP, "uid": vmi_uid}


def change_requests_patch(vm: Obj, changes: list[Obj]) -> list[Obj]:
    """Queue ``changes`` on the VM's status; only a lone stop may replace requests still pending."""
    status = vm.get("status") or {}
    name = (vm.get("metadata") or {}).get("name", "")
    if not status:
        operations = [{"op": "add", "path": "/status", "value": {"stateChangeRequests": changes}}]
    elif "stateChangeRequests" in status:
        pending = status["stateChangeRequests"]
        if pending and not (len(changes) == 1 and changes[0]["action"] == STOP):
            raise conflict(VM, name, "unable to complete request: stop/start already underway")
        # The test makes a concurrent request fail instead of being overwritten.
        operations = [{"op": "test", "path": "/status/stateChangeRequests", "value": pending},
                      {"op": "replace" if pending else "add", "path": "/status/stateChangeRequests",
                       "value": changes}]
    else:
        operations = [{"op": "add", "path": "/status/stateChangeRequests", "value": changes}]
    if status.get("startFailure") is not None:
        operations.append({"op": "remove", "path": "/status/startFailure"})  # a manual start resets the back-off
    return operations


def running_patch(vm: Obj, running: bool) -> list[Obj]:
    """Always or Halted, in whichever field the VM uses (runStrategy, or the deprecated running)."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy") is not None:
        strategy = (RunStrategy.ALWAYS if running else RunStrategy.HALTED).value
        return [{"op": "test", "path": "/spec/runStrategy", "value": spec["runStrategy"]},
                {"op": "replace", "path": "/spec/runStrategy", "value": strategy}]
    if spec.get("running") is not None:
        return [{"op": "test", "path": "/spec/running", "value": spec["running"]},
                {"op": "replace", "path": "/spec/running", "value": running}]
    return [{"op": "add", "path": "/spec/running", "value": running}]
