"""printableStatus as upstream shows it in `kubectl get vm`, and the start back-off."""

from __future__ import annotations

import datetime

import pytest

from virt_controller.vm_status import backoff_seconds, printable_status

NOW = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.UTC)
LATER = "2026-11-25T12:05:00Z"


def _vmi(phase: str, conditions: list | None = None, deleting: bool = False) -> dict:
    meta = {"name": "x", "deletionTimestamp": "2026-11-25T11:59:00Z"} if deleting else {"name": "x"}
    return {"metadata": meta, "status": {"phase": phase, "conditions": conditions or []}}


@pytest.mark.parametrize("vm, vmi, expected", [
    ({}, None, "Stopped"),
    ({"status": {"startFailure": {"retryAfterTimestamp": LATER}}}, None, "CrashLoopBackOff"),
    ({"metadata": {"deletionTimestamp": "2026-11-25T11:00:00Z"}}, None, "Terminating"),
    ({}, _vmi("Pending"), "Starting"),
    ({}, _vmi("Scheduling", [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]),
     "ErrorUnschedulable"),
    ({}, _vmi("Pending", [{"type": "Synchronized", "status": "False", "reason": "FailedPvcNotFound"}]),
     "ErrorPvcNotFound"),
    ({}, _vmi("Scheduled"), "Starting"),
    ({}, _vmi("Running"), "Running"),
    ({}, _vmi("Running", [{"type": "Paused", "status": "True"}]), "Paused"),
    ({}, _vmi("Running", deleting=True), "Stopping"),
    ({}, _vmi("Succeeded"), "Stopped"),
    ({"status": {"startFailure": {"retryAfterTimestamp": LATER}}}, _vmi("Failed"), "CrashLoopBackOff"),
])
def test_printable_status(vm: dict, vmi: dict | None, expected: str) -> None:
    assert printable_status(vm, vmi, NOW).value == expected


def test_backoff_doubles_to_five_minutes() -> None:
    assert [backoff_seconds(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 300, 300]
