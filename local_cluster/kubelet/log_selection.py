"""Which run of a container `logs [--previous]` reads, decided from the pod status the
way kubelet's validateContainerLogStatus does: the container ID a state names is the
run, and the run number names the log file (pod_dir.log_file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local_cluster.kubelet.pod_status import attempt_of

Obj = dict[str, Any]


class LogUnavailable(Exception):
    """No log to serve; ``code`` is the HTTP status kubelet answers with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SelectedRun:
    attempt: int
    # The run may still write: a follow waits for more until it has exited.
    live: bool


def container_status(status: Obj, container: str) -> Obj | None:
    for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if entry.get("name") == container:
            return entry
    return None


def select_run(status: Obj, pod: str, container: str, previous: bool) -> SelectedRun:
    entry = container_status(status, container)
    if entry is None:
        raise LogUnavailable(400, f'container "{container}" in pod "{pod}" is not available')
    state = entry.get("state") or {}
    last = (entry.get("lastState") or {}).get("terminated")
    if previous:
        if not last or attempt_of(last.get("containerID") or "") is None:
            raise LogUnavailable(400, f'previous terminated container "{container}" in pod "{pod}" not found')
        return SelectedRun(_attempt(last), live=False)
    if state.get("running") is not None:
        return SelectedRun(_attempt(entry), live=True)
    if state.get("terminated") is not None:
        return SelectedRun(_attempt(state["terminated"]), live=False)
    if last:
        return SelectedRun(_attempt(last), live=False)
    waiting = state.get("waiting")
    if waiting is not None:
        raise LogUnavailable(400, f'container "{container}" in pod "{pod}" is waiting to start: '
                                  f'{_waiting_reason(waiting.get("reason") or "")}')
    raise LogUnavailable(400, f'container "{container}" in pod "{pod}" is waiting to start - no logs yet')


def is_live(status: Obj | None, container: str, attempt: int) -> bool:
    """The run is still the container's running one (a follow keeps waiting for output)."""
    entry = container_status(status or {}, container)
    if entry is None or (entry.get("state") or {}).get("running") is None:
        return False
    return attempt_of(entry.get("containerID") or "") == attempt


def _attempt(holder: Obj) -> int:
    attempt = attempt_of(holder.get("containerID") or "")
    if attempt is None:
        raise LogUnavailable(400, "the container has no run of this runtime")
    return attempt


def _waiting_reason(reason: str) -> str:
    # kubelet words the two common image failures for people, not by their reason.
    return {"ErrImagePull": "image can't be pulled",
            "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
