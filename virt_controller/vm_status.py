"""What a VirtualMachine's status says: printableStatus, ready/created, and the start back-off."""

from __future__ import annotations

import datetime
from typing import Any

from kube_client.timestamps import parse_time
from kubevirt_api.objects import condition, condition_true, vmi_phase
from kubevirt_api.phases import PrintableStatus, VMIPhase

Obj = dict[str, Any]

BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 300


def backoff_seconds(consecutive_failures: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """10 s after the first failure, doubling up to 5 minutes."""
    if consecutive_failures <= 0:
        return 0
    return min(base * 2 ** (consecutive_failures - 1), BACKOFF_CAP_SECONDS)


def in_backoff(vm: Obj, now: datetime.datetime) -> bool:
    retry_after = ((vm.get("status") or {}).get("startFailure") or {}).get("retryAfterTimestamp")
    return bool(retry_after) and parse_time(retry_after) > now


def printable_status(vm: Obj, vmi: Obj | None, now: datetime.datetime) -> PrintableStatus:
    if (vm.get("metadata") or {}).get("deletionTimestamp"):
        return PrintableStatus.TERMINATING
    if vmi is None:
        return PrintableStatus.CRASH_LOOP_BACK_OFF if in_backoff(vm, now) else PrintableStatus.STOPPED
    if (vmi.get("metadata") or {}).get("deletionTimestamp"):
        return PrintableStatus.STOPPING
    phase = vmi_phase(vmi)
    if phase in (VMIPhase.UNSET, VMIPhase.PENDING, VMIPhase.SCHEDULING):
        scheduled = condition(vmi, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            return PrintableStatus.ERROR_UNSCHEDULABLE
        synchronized = condition(vmi, "Synchronized")
        if synchronized is not None and synchronized.get("status") == "False" and \
                synchronized.get("reason") == "FailedPvcNotFound":
            return PrintableStatus.ERROR_PVC_NOT_FOUND
        return PrintableStatus.STARTING
    if phase == VMIPhase.SCHEDULED:
        return PrintableStatus.STARTING
    if phase == VMIPhase.RUNNING:
        return PrintableStatus.PAUSED if condition_true(vmi, "Paused") else PrintableStatus.RUNNING
    if phase == VMIPhase.FAILED and in_backoff(vm, now):
        return PrintableStatus.CRASH_LOOP_BACK_OFF
    if phase in (VMIPhase.SUCCEEDED, VMIPhase.FAILED):
        return PrintableStatus.STOPPED
    return PrintableStatus.UNKNOWN
