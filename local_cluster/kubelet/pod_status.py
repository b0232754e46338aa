"""The Kubernetes pod status derived from a worker's records: phase, conditions,
container statuses. Pure apart from remembering when each condition last changed
(in the state's condition_times), so it can be recomputed at any moment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local_cluster.kubelet.pod_state import ContainerRecord, PodState

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"


@dataclass(frozen=True)
class ProbeView:
    """Probe verdicts for a running container; None where the probe is not declared."""

    ready: bool | None = None
    started: bool | None = None


_ID_SCHEME = "process://"


def container_id(uid: str, record: ContainerRecord) -> str:
    attempt = record.run.attempt if record.run else max(0, record.runs_started - 1)
    return run_id(uid, record.name, attempt)


def previous_container_id(uid: str, record: ContainerRecord) -> str:
    """The ID of the run lastState describes: the one before the current run, or,
    between runs (back-off), the one that just exited."""
    attempt = record.run.attempt - 1 if record.run else record.runs_started - 1
    return run_id(uid, record.name, max(0, attempt))


def run_id(uid: str, name: str, attempt: int) -> str:
    # The attempt is the last segment: it names the run's log file (pod_dir.log_file).
    return f"{_ID_SCHEME}{uid}-{name}-{attempt}"


def attempt_of(cid: str) -> int | None:
    """The run number a container ID of this runtime names; None for anything else."""
    if not cid.startswith(_ID_SCHEME):
        return None
    tail = cid.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _terminated(exit_record: dict[str, Any], cid: str) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": exit_record.get("exitCode"),
        "reason": exit_record.get("reason") or "Error",
        "startedAt": exit_record.get("startedAt"),
        "finishedAt": exit_record.get("finishedAt"),
        "containerID": cid,
    }
    if exit_record.get("message"):
        terminated["message"] = exit_record["message"]
    if exit_record.get("signal"):
        terminated["signal"] = exit_record["signal"]
    return terminated


def _state(record: ContainerRecord, uid: str) -> dict[str, Any]:
    run = record.run
    if run is not None and run.exit is not None:
        return {"terminated": _terminated(run.exit, container_id(uid, record))}
    if run is not None and run.container is not None:
        return {"running": {"startedAt": run.started_at}}
    waiting: dict[str, Any] = {"reason": record.waiting_reason}
    if record.waiting_message:
        waiting["message"] = record.waiting_message
    return {"waiting": waiting}


def container_status(record: ContainerRecord, uid: str, probes: ProbeView) -> dict[str, Any]:
    run = record.run
    running = run is not None and run.running
    if record.init:
        ready = record.succeeded
        started = running
    else:
        ready = running and probes.ready is not False
        started = running and probes.started is not False
    cid = container_id(uid, record)
    status: dict[str, Any] = {
        "name": record.name,
        "image": record.image,
        "imageID": record.image_id,
        "ready": ready,
        "started": started,
        "restartCount": record.restart_count,
        "state": _state(record, uid),
        "lastState": {"terminated": _terminated(record.last_exit, previous_container_id(uid, record))}
        if record.last_exit else {},
    }
    if run is not None:
        status["containerID"] = cid
    return status


def pod_phase(spec: dict[str, Any], state: PodState) -> str:
    records = list(state.containers.values())
    inits = [r for r in records if r.init]
    mains = [r for r in records if not r.init]
    restart_policy = "Never" if state.terminating else (spec.get("restartPolicy") or "Always")
    if any(r.exited and not r.succeeded for r in inits) and restart_policy == "Never":
        return FAILED
    if not all(r.succeeded for r in inits):
        return PENDING
    running = sum(1 for r in mains if r.run is not None and r.run.running)
    # A container that ran before and is between runs (back-off, restarting) counts
    # as stopped; only one that never ran counts as waiting.
    stopped = [r for r in mains if not (r.run is not None and r.run.running) and (r.exited or r.last_exit)]
    waiting = len(mains) - running - len(stopped)
    if waiting > 0:
        return PENDING
    if running > 0:
        return RUNNING
    if not mains:
        return SUCCEEDED
    if restart_policy == "Always":
        return RUNNING
    if all(r.succeeded for r in mains):
        return SUCCEEDED
    # OnFailure: the failed containers are coming back.
    return FAILED if restart_policy == "Never" else RUNNING


def _condition(state: PodState, kind: str, ok: bool, reason: str, message: str, now: str) -> dict[str, Any]:
    status = "True" if ok else "False"
    previous = state.condition_times.get(kind)
    if previous is None or previous[0] != status:
        state.condition_times[kind] = [status, now]
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": state.condition_times[kind][1],
    }
    if not ok:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


def _readiness_gates_met(pod: dict[str, Any]) -> bool:
    gates = [g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []]
    current = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    return all(current.get(gate) == "True" for gate in gates)


def pod_status(pod: dict[str, Any], state: PodState, probes: dict[str, ProbeView], now: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    inits = [r for r in state.containers.values() if r.init]
    mains = [r for r in state.containers.values() if not r.init]
    init_statuses = [container_status(r, state.uid, ProbeView()) for r in inits]
    main_statuses = [container_status(r, state.uid, probes.get(r.name, ProbeView())) for r in mains]
    phase = pod_phase(spec, state)
    completed = phase in (SUCCEEDED, FAILED)
    incomplete = [r.name for r in inits if not r.succeeded]
    unready = [s["name"] for s in main_statuses if not s["ready"]]
    gates = _readiness_gates_met(pod)
    not_ready_reason = "PodCompleted" if completed else "ContainersNotReady"
    conditions = [
        _condition(state, "PodScheduled", True, "", "", now),
        _condition(
            state,
            "Initialized",
            not incomplete,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
            now,
        ),
        _condition(
            state,
            "ContainersReady",
            not unready and not completed,
            not_ready_reason,
            f"containers with unready status: [{' '.join(unready)}]" if unready else "",
            now,
        ),
        _condition(
            state,
            "Ready",
            not unready and not completed and gates,
            not_ready_reason if unready or completed else "ReadinessGatesNotReady",
            f"containers with unready status: [{' '.join(unready)}]" if unready else "",
            now,
        ),
    ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": state.host_ip,
        "hostIPs": [{"ip": state.host_ip}],
        "podIP": state.pod_ip,
        "podIPs": [{"ip": state.pod_ip}],
        "startTime": state.start_time,
        "containerStatuses": main_statuses,
    }
    if inits:
        status["initContainerStatuses"] = init_statuses
    return status
