"""Supervision of one pod: init containers in order, then the containers; restarts
with back-off by restart policy; probes; graceful termination; the pod status.

One thread per pod owns the pod's state (PodState) and is its only writer; the
agent talks to it through update(), terminate() and status(), which only exchange
small values under a lock, so a slow image unpack never blocks the agent.

Every change is written to <pod dir>/state.json before the worker acts on it, and a
container's exit is recorded by its trampoline, not by the kubelet, so a worker
adopted by a new kubelet process (PodWorker.adopt) carries on with the same
processes and loses no exit codes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen, TimeoutExpired
from typing import Any

from kube_client.timestamps import now_text
from local_cluster.kubelet.backoff import BackoffPolicy
from local_cluster.kubelet.downward import PodAddresses
from local_cluster.kubelet.env import EnvError, container_env
from oci_layout.image_ref import InvalidReference
from local_cluster.kubelet.images import ContainerCommandError, ImageResolver, container_argv
from oci_layout.store import ImageFormatError, ImageNotFound
from oci_layout.rooted_paths import UnsafePath, dns_label
from local_cluster.kubelet.pod_dir import PodDir
from local_cluster.kubelet.pod_sources import PodSources
from local_cluster.kubelet.pod_state import WAITING_CREATING, ContainerRecord, PodState, RunRecord
from local_cluster.kubelet.pod_status import FAILED, SUCCEEDED, ProbeView, pod_phase, pod_status
from local_cluster.kubelet.probes import ContainerProbes, ProbeTarget
from local_cluster.kubelet.proc import ProcessIdentity
from local_cluster.kubelet.sandbox import (
    MountConfigError,
    container_mounts,
    kill,
    kill_trampoline,
    launch,
    prune_logs,
    prune_runs,
    termination_log_mount,
    termination_message,
    terminate,
    wait_exit,
)
from local_cluster.kubelet.sandbox_spec import (
    EXIT_FILE,
    SHIM_FILE,
    SPEC_FILE,
    STARTED_FILE,
    SandboxSpec,
)
from local_cluster.kubelet.json_files import read_json, write_json_atomic
from local_cluster.kubelet.host_paths import NodeHostPaths
from local_cluster.kubelet.volumes import PreparedVolume, VolumeError, prepare_volumes
from local_cluster.kubelet.wakeup import Wakeup, exit_fd

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 30.0
WAITING_INITIALIZING = "PodInitializing"
# How long a run whose trampoline has not announced itself yet is given to do so.
_ANNOUNCE_GRACE_SECONDS = 5.0

StatusCallback = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class WorkerSettings:
    node_name: str
    images: ImageResolver
    host_paths: NodeHostPaths = NodeHostPaths()
    backoff: BackoffPolicy = BackoffPolicy()
    python: str = sys.executable
    poll_interval: float = 0.1
    # A settled pod (every container started, nothing changing) is looked at this often;
    # exits, pod updates and probe changes still wake it at once.
    idle_poll_interval: float = 1.0
    # Retry delay for CreateContainerConfigError and volume setup failures; the
    # agent's update() with fresher objects also triggers a retry at once.
    retry_interval: float = 2.0
    # After SIGKILL, how long a trampoline may take to report before it is killed too.
    kill_timeout: float = 5.0


# Steps without a change before a settled pod is looked at less often.
QUIET_STEPS_BEFORE_IDLE = 5


def pod_uid_of(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _grace_of(pod: dict[str, Any]) -> float:
    meta = pod.get("metadata") or {}
    for value in (meta.get("deletionGracePeriodSeconds"), (pod.get("spec") or {}).get("terminationGracePeriodSeconds")):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return DEFAULT_GRACE_SECONDS


def _container_specs(pod: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    spec = pod.get("spec") or {}
    return [(c, True) for c in spec.get("initContainers") or []] + [(c, False) for c in spec.get("containers") or []]


def new_pod_state(pod: dict[str, Any], pod_ip: str, host_ip: str) -> PodState:
    """The state of a pod no container of which has run yet."""
    specs = _container_specs(pod)
    if not any(not init for _, init in specs):
        raise ValueError("pod has no containers")
    has_init = any(init for _, init in specs)
    records: dict[str, ContainerRecord] = {}
    for container, init in specs:
        name = dns_label(container.get("name"), "container name")
        if name in records:
            raise UnsafePath(f"container name {name!r} is used twice")
        records[name] = ContainerRecord(
            name=name,
            init=init,
            image=str(container.get("image") or ""),
            waiting_reason=WAITING_INITIALIZING if has_init else WAITING_CREATING,
        )
    return PodState(uid=pod_uid_of(pod), pod_ip=pod_ip, host_ip=host_ip, start_time=now_text(), containers=records)


class PodWorker:
    def __init__(
        self,
        pod: dict[str, Any],
        pod_dir: PodDir,
        settings: WorkerSettings,
        state: PodState,
        sources: PodSources | None,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.uid = state.uid
        self.pod_dir = pod_dir
        self._settings = settings
        self._state = state
        self._on_status = on_status
        self._inbox = threading.Lock()
        self._pod = pod
        self._sources = sources
        self._sources_version = 0
        self._terminate_request: float | None = None
        self._wake = Wakeup()
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self._status_lock = threading.Lock()
        self._status: dict[str, Any] | None = None
        self._published: dict[str, Any] | None = None
        self._saved = ""
        # Owned by the worker thread only.
        self._applied_sources_version = -1
        self._popens: dict[str, Popen[bytes]] = {}
        self._exit_fds: dict[str, int] = {}  # container -> its trampoline's pidfd
        self._started_fds: dict[str, int] = {}  # container -> its trampoline's "started" pipe, until it starts
        self._probes: dict[str, tuple[int, ContainerProbes]] = {}
        self._volumes: dict[str, PreparedVolume] | None = None
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.uid}", daemon=True)

    @classmethod
    def create(
        cls,
        pod: dict[str, Any],
        pod_dir: PodDir,
        settings: WorkerSettings,
        pod_ip: str,
        host_ip: str,
        sources: PodSources,
        on_status: StatusCallback | None = None,
    ) -> PodWorker:
        state = new_pod_state(pod, pod_ip, host_ip)
        pod_dir.create()
        _write_pod(pod_dir, pod)
        state.save(pod_dir.state_file)
        return cls(pod, pod_dir, settings, state, sources, on_status)

    @classmethod
    def adopt(cls, pod_dir: PodDir, settings: WorkerSettings, on_status: StatusCallback | None = None) -> PodWorker:
        """Take over a pod a previous kubelet process ran, with whatever still runs.

        Containers keep running; nothing restarts until update() brings the pod's
        sources again (the agent resyncs every pod it still has in the API).
        """
        pod = json.loads(pod_dir.pod_file.read_text())
        state = PodState.load(pod_dir.state_file)
        return cls(pod, pod_dir, settings, state, None, on_status)

    # -- the agent's side -------------------------------------------------

    def start(self) -> None:
        with self._inbox:
            pod = self._pod
        # A first status before the thread runs, so status() never races it.
        self._status = pod_status(pod, self._state, {}, now_text())
        self._thread.start()

    def update(self, pod: dict[str, Any], sources: PodSources | None) -> None:
        """A newer pod object and/or newer referenced objects; a deletionTimestamp
        starts graceful termination."""
        with self._inbox:
            if pod != self._pod:
                # Kept on disk for a kubelet that adopts this pod after a restart.
                _write_pod(self.pod_dir, pod)
            self._pod = pod
            if sources is not None:
                self._sources = sources
                self._sources_version += 1
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.terminate(_grace_of(pod))
        self._wake.set()

    def terminate(self, grace_seconds: float | None = None) -> None:
        """Stop every container: SIGTERM, then SIGKILL after the grace period.
        A later call may shorten the grace period, never lengthen it."""
        with self._inbox:
            grace = _grace_of(self._pod) if grace_seconds is None else max(0.0, float(grace_seconds))
            if self._terminate_request is None or grace < self._terminate_request:
                self._terminate_request = grace
        self._wake.set()

    def wait_terminated(self, timeout: float) -> bool:
        return self._stopped.wait(timeout)

    @property
    def terminated(self) -> bool:
        """Termination was requested and every container has exited."""
        return self._stopped.is_set()

    def status(self) -> dict[str, Any]:
        """The pod status as of the worker's last step (start() computes a first one)."""
        with self._status_lock:
            return copy.deepcopy(self._status or {})

    def close(self, timeout: float = 5.0) -> None:
        """Stop supervising and leave every process running (a kubelet restart)."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for _, probes in self._probes.values():
            probes.stop()

    # -- the worker thread ------------------------------------------------

    def _run(self) -> None:
        quiet_steps = 0
        while not self._closing.is_set():
            changed = True
            try:
                pod = self._tick()
                status = self._compute_status(pod)
                changed = self._persist() | self._publish(status)
                if self._state.terminating and not self._any_active():
                    # Only now: whoever waits for termination reads the final status.
                    self._stopped.set()
                    break
            except Exception:  # noqa: BLE001 - supervision must survive its own bugs
                log.exception("pod %s: supervision step failed", self.uid)
            quiet_steps = 0 if changed else quiet_steps + 1
            idle = quiet_steps >= QUIET_STEPS_BEFORE_IDLE and self._settled()
            self._wake.wait(self._settings.idle_poll_interval if idle else self._settings.poll_interval,
                            [*self._exit_fds.values(), *self._started_fds.values()])
            self._wake.clear()
        for _, probes in self._probes.values():
            probes.stop()
        for fds in (self._exit_fds, self._started_fds):
            for name in list(fds):
                self._close_fd(fds, name)
        self._wake.close()

    def _settled(self) -> bool:
        """Nothing due soon: no termination under way, no container between launch and start."""
        if self._state.terminating:
            return False
        return all(r.run is None or r.run.exit is not None or r.run.container is not None
                   for r in self._state.containers.values())

    @staticmethod
    def _close_fd(fds: dict[str, int], name: str) -> None:
        fd = fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def _any_active(self) -> bool:
        return any(r.run is not None and r.run.active for r in self._state.containers.values())

    def _tick(self) -> dict[str, Any]:
        now = time.time()
        with self._inbox:
            pod, sources, version, grace = self._pod, self._sources, self._sources_version, self._terminate_request
        if grace is not None:
            self._begin_termination(grace, now)
        for record in self._state.containers.values():
            self._observe(record, pod)
        self._sync_probes(pod)
        if self._state.terminating:
            self._escalate_kills(now)
            return pod
        if version != self._applied_sources_version and sources is not None:
            self._refresh_volumes(pod, sources)
            self._applied_sources_version = version
        if pod_phase(pod.get("spec") or {}, self._state) in (SUCCEEDED, FAILED):
            return pod
        self._kill_on_probe_failure(pod, now)
        self._escalate_kills(now)
        specs = {dns_label(c.get("name"), "container name"): c for c, _ in _container_specs(pod)}
        for record in (r for r in self._state.containers.values() if r.init):
            if not record.succeeded:
                self._drive(record, specs[record.name], pod, sources, now)
            if not record.succeeded:
                return pod
        for record in (r for r in self._state.containers.values() if not r.init):
            self._drive(record, specs[record.name], pod, sources, now)
        return pod

    # -- observing runs ---------------------------------------------------

    def _observe(self, record: ContainerRecord, pod: dict[str, Any]) -> None:
        run = record.run
        if run is None or run.exit is not None:
            self._close_fd(self._started_fds, record.name)
            return
        run_dir = Path(run.run_dir)
        if run.shim is None:
            announced = read_json(run_dir / SHIM_FILE)
            if announced:
                run.shim = ProcessIdentity(announced["pid"], announced["startTicks"])
        if run.container is None:
            started = read_json(run_dir / STARTED_FILE)
            if started:
                run.container = ProcessIdentity(started["pid"], started["startTicks"])
                run.started_at = started["startedAt"]
        if run.container is not None:
            self._close_fd(self._started_fds, record.name)  # it has said all it had to: stop waking on it
        exit_record = read_json(run_dir / EXIT_FILE)
        if exit_record is None and not self._trampoline_alive(record.name, run):
            # It may have written its report just before exiting.
            exit_record = read_json(run_dir / EXIT_FILE) or self._lost(run)
        if exit_record is None:
            return
        self._reap(record.name, run)
        container = next((c for c, _ in _container_specs(pod) if c.get("name") == record.name), {})
        message = termination_message(
            container, run_dir, self.pod_dir.log_file(record.name, run.attempt), int(exit_record.get("exitCode") or 0)
        )
        if message:
            exit_record["message"] = message
        run.exit = exit_record

    def _trampoline_alive(self, name: str, run: RunRecord) -> bool:
        popen = self._popens.get(name)
        if popen is not None:
            return popen.poll() is None
        if run.shim is not None:
            return run.shim.alive()
        # Launched by a kubelet that died before the trampoline announced itself:
        # give it a moment before declaring the run lost.
        try:
            launched = (Path(run.run_dir) / SPEC_FILE).stat().st_mtime
        except FileNotFoundError:
            return False
        return time.time() - launched < _ANNOUNCE_GRACE_SECONDS

    def _lost(self, run: RunRecord) -> dict[str, Any]:
        """The trampoline vanished without reporting (it was killed): the exit code
        is unknowable, and the command, if still there, has lost its supervisor."""
        kill(None, run.container)
        log.warning("pod %s: trampoline of %s vanished without reporting", self.uid, run.run_dir)
        return {
            "exitCode": 137,
            "signal": None,
            "reason": "ContainerStatusUnknown",
            "message": "the container's sandbox supervisor exited without reporting; the container was stopped",
            "startedAt": run.started_at or now_text(),
            "finishedAt": now_text(),
        }

    def _reap(self, name: str, run: RunRecord) -> None:
        """Collect the trampoline once it reported, so that a finished termination
        leaves no process of the pod behind, adopted trampolines included."""
        popen = self._popens.pop(name, None)
        self._close_fd(self._exit_fds, name)
        self._close_fd(self._started_fds, name)
        if popen is None:
            if not wait_exit(run.shim, 2.0):
                log.warning("pod %s: trampoline of %s lingers after reporting", self.uid, run.run_dir)
            return
        try:
            popen.wait(timeout=2.0)
        except TimeoutExpired:
            # It reported already; whatever keeps it is not worth waiting for.
            kill_trampoline(ProcessIdentity.of(popen.pid))
            try:
                popen.wait(timeout=2.0)
            except TimeoutExpired:
                log.warning("pod %s: trampoline %d of %s will not die", self.uid, popen.pid, name)

    # -- starting and restarting ------------------------------------------

    def _drive(
        self,
        record: ContainerRecord,
        container: dict[str, Any],
        pod: dict[str, Any],
        sources: PodSources | None,
        now: float,
    ) -> None:
        if record.finished:
            return
        if record.run is not None and record.run.exit is None:
            return
        if record.run is not None:
            self._after_exit(record, pod, now)
            if record.finished:
                return
        if now < record.next_start_at:
            return
        if sources is None:
            record.waiting_message = "waiting for the kubelet to resync this pod after a restart"
            return
        self._start(record, container, pod, sources, now)

    def _after_exit(self, record: ContainerRecord, pod: dict[str, Any], now: float) -> None:
        assert record.run is not None and record.run.exit is not None
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        failed = record.run.exit.get("exitCode") != 0
        if record.init:
            restart = failed and policy != "Never"
        else:
            restart = policy == "Always" or (policy == "OnFailure" and failed)
        if not restart:
            record.finished = True
            return
        backoff = self._settings.backoff
        step = backoff.next_step(record.backoff_step, now - record.last_restart_at)
        delay = backoff.delay(step)
        record.backoff_step = step + 1
        record.last_exit = record.run.exit
        record.run = None
        record.next_start_at = now + delay
        meta = pod.get("metadata") or {}
        record.waiting_reason = "CrashLoopBackOff"
        record.waiting_message = (
            f"back-off {delay:g}s restarting failed container={record.name} "
            f"pod={meta.get('name')}_{meta.get('namespace', 'default')}({self.uid})"
        )

    def _addresses(self) -> PodAddresses:
        return PodAddresses(self._state.pod_ip, self._state.host_ip, self._settings.node_name)

    def _refresh_volumes(self, pod: dict[str, Any], sources: PodSources) -> None:
        """Re-project ConfigMap/Secret/downward volumes from newer objects, as kubelet
        does for running pods; a failure keeps the previous contents."""
        if self._volumes is None:
            return
        try:
            self._volumes = prepare_volumes(pod, self.pod_dir.path, sources, self._addresses(), self._settings.host_paths)
        except VolumeError as exc:
            log.warning("pod %s: refreshing volumes failed: %s", self.uid, exc)

    def _wait(self, record: ContainerRecord, reason: str, message: str, retry_at: float) -> None:
        record.waiting_reason = reason
        record.waiting_message = message
        record.next_start_at = retry_at

    def _start(
        self, record: ContainerRecord, container: dict[str, Any], pod: dict[str, Any], sources: PodSources, now: float
    ) -> None:
        settings = self._settings
        try:
            image = settings.images.resolve(str(container.get("image") or ""))
        except (ImageNotFound, ImageFormatError, InvalidReference) as exc:
            record.pull_failures += 1
            reason = "ErrImagePull" if record.pull_failures == 1 else "ImagePullBackOff"
            self._wait(record, reason, str(exc), now + settings.backoff.delay(record.pull_failures))
            return
        if self._volumes is None:
            try:
                self._volumes = prepare_volumes(pod, self.pod_dir.path, sources, self._addresses(), self._settings.host_paths)
            except VolumeError as exc:
                self._wait(record, WAITING_CREATING, str(exc), now + settings.retry_interval)
                return
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        hostname = str(spec.get("hostname") or meta.get("name") or self.uid)[:63]
        attempt = record.runs_started
        run_dir = self.pod_dir.run_dir(record.name, attempt)
        try:
            env = container_env(pod, container, sources, image.env, self._addresses())
            environ = dict(env.environ)
            environ.setdefault("HOSTNAME", hostname)
            argv = env.expand_argv(container_argv(image, container))
            mounts = container_mounts(container, self._volumes, env.declared)
            if run_dir.exists():
                shutil.rmtree(run_dir)  # a start that a crashed kubelet never recorded
            run_dir.mkdir(parents=True)
            mounts.append(termination_log_mount(container, run_dir))
        except (EnvError, MountConfigError, ContainerCommandError) as exc:
            self._wait(record, "CreateContainerConfigError", str(exc), now + settings.retry_interval)
            return
        sandbox = SandboxSpec(
            argv=argv,
            env=environ,
            run_dir=str(run_dir),
            pod_tmp=str(self.pod_dir.tmp),
            mounts=mounts,
            working_dir=container.get("workingDir") or image.working_dir,
            rootfs=str(image.rootfs) if image.rootfs else None,
            hostname=None if spec.get("hostNetwork") else hostname,
            kept_host_paths=[] if image.rootfs else _host_paths_to_keep(settings.python),
        )
        # Recorded before the launch: a kubelet dying in between finds the run and
        # the trampoline's own announcement instead of starting a second copy.
        record.run = RunRecord(attempt=attempt, run_dir=str(run_dir), shim=None)
        if record.runs_started > 0:
            record.last_restart_at = now
        record.runs_started += 1
        record.image_id = image.image_id
        record.pull_failures = 0
        self._wait(record, WAITING_CREATING, "", 0.0)
        self._persist()
        popen, started_fd = launch(sandbox, self.pod_dir.log_file(record.name, attempt), settings.python)
        self._popens[record.name] = popen
        self._close_fd(self._exit_fds, record.name)
        self._close_fd(self._started_fds, record.name)
        self._started_fds[record.name] = started_fd
        if (fd := exit_fd(popen.pid)) is not None:
            self._exit_fds[record.name] = fd
        record.run.shim = ProcessIdentity.of(popen.pid)
        self._persist()
        # Like kubelet, keep the current and the previous run (`logs --previous`).
        prune_runs(run_dir.parent, keep_from=attempt - 1)
        prune_logs(self.pod_dir.log_file(record.name, attempt).parent, keep_from=attempt - 1)

    # -- probes -----------------------------------------------------------

    def _sync_probes(self, pod: dict[str, Any]) -> None:
        specs = {c.get("name"): c for c, init in _container_specs(pod) if not init}
        for record in (r for r in self._state.containers.values() if not r.init):
            run = record.run
            current = self._probes.get(record.name)
            wanted = run is not None and run.running and not self._state.terminating
            if current is not None and (not wanted or run is None or current[0] != run.attempt):
                current[1].stop()
                del self._probes[record.name]
                current = None
            container = specs.get(record.name) or {}
            has_probes = any(container.get(k) for k in ("startupProbe", "readinessProbe", "livenessProbe"))
            if wanted and current is None and has_probes and run is not None and run.container is not None:
                probes = ContainerProbes(container, self._probe_target(run, container), self._wake.set)
                self._probes[record.name] = (run.attempt, probes)
                probes.start()

    def _probe_target(self, run: RunRecord, container: dict[str, Any]) -> ProbeTarget:
        assert run.container is not None
        try:
            env = SandboxSpec.read(Path(run.run_dir) / SPEC_FILE).env
        except (FileNotFoundError, ValueError):
            env = {}
        ports = {
            str(p["name"]): int(p["containerPort"])
            for p in container.get("ports") or []
            if p.get("name") and p.get("containerPort")
        }
        return ProbeTarget(pid=run.container.pid, pod_ip=self._state.pod_ip, env=env, named_ports=ports)

    def _kill_on_probe_failure(self, pod: dict[str, Any], now: float) -> None:
        specs = {c.get("name"): c for c, init in _container_specs(pod) if not init}
        for name, (attempt, probes) in self._probes.items():
            record = self._state.containers[name]
            run = record.run
            reason = probes.failed
            if reason and run is not None and run.attempt == attempt and run.running and run.kill_deadline is None:
                probe = (specs.get(name) or {}).get("livenessProbe" if "liveness" in reason else "startupProbe") or {}
                grace = probe.get("terminationGracePeriodSeconds")
                log.info("pod %s: container %s %s, restarting it", self.uid, name, reason)
                self._begin_kill(run, float(grace) if isinstance(grace, (int, float)) else _grace_of(pod), now)

    # -- stopping ---------------------------------------------------------

    def _begin_termination(self, grace: float, now: float) -> None:
        if self._state.terminating and self._state.grace_seconds is not None and self._state.grace_seconds <= grace:
            return
        self._state.terminating = True
        self._state.grace_seconds = grace
        for record in self._state.containers.values():
            if record.run is not None and record.run.active:
                self._begin_kill(record.run, grace, now)
            else:
                record.finished = True

    def _begin_kill(self, run: RunRecord, grace: float, now: float) -> None:
        deadline = now + grace
        if run.kill_deadline is None or deadline < run.kill_deadline:
            run.kill_deadline = deadline
        if run.container is not None and not run.term_sent:
            terminate(run.container)
            run.term_sent = True

    def _escalate_kills(self, now: float) -> None:
        for record in self._state.containers.values():
            run = record.run
            if run is None or not run.active or run.kill_deadline is None:
                continue
            if run.container is not None and not run.term_sent:
                terminate(run.container)  # it started after the kill was decided
                run.term_sent = True
            if now < run.kill_deadline:
                continue
            # Repeated on every pass: a process may fork while the first KILL flies.
            kill(run.shim, run.container)
            if run.kill_sent_at is None:
                run.kill_sent_at = now
            elif now - run.kill_sent_at > self._settings.kill_timeout:
                kill_trampoline(run.shim)
                self._reap(record.name, run)
                run.exit = read_json(Path(run.run_dir) / EXIT_FILE) or self._lost(run)

    # -- reporting --------------------------------------------------------

    def _compute_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        views: dict[str, ProbeView] = {}
        for container, init in _container_specs(pod):
            if init:
                continue
            name = container.get("name", "")
            current = self._probes.get(name)
            if current is not None:
                views[name] = ProbeView(ready=current[1].ready, started=current[1].started)
            else:
                views[name] = ProbeView(
                    ready=False if container.get("readinessProbe") else None,
                    started=False if container.get("startupProbe") else None,
                )
        return pod_status(pod, self._state, views, now_text())

    def _persist(self) -> bool:
        """Save the state if it changed; whether it did."""
        serialized = json.dumps(self._state.to_json(), sort_keys=True)
        if serialized == self._saved:
            return False
        self._state.save(self.pod_dir.state_file)
        self._saved = serialized
        return True

    def _publish(self, status: dict[str, Any]) -> bool:
        """Hand a changed status to the agent; whether it changed."""
        with self._status_lock:
            self._status = status
        if status == self._published:
            return False
        self._published = status
        if self._on_status is not None:
            try:
                self._on_status(self.uid, copy.deepcopy(status))
            except Exception:  # noqa: BLE001 - the agent's problem, not the pod's
                log.exception("pod %s: status callback failed", self.uid)
        return True


def _host_paths_to_keep(python: str) -> list[str]:
    """What a host-root container needs from the host: this checkout and its Python."""
    checkout = Path(__file__).resolve().parents[2]
    interpreter = Path(os.path.realpath(python)).parent.parent
    return [str(checkout), sys.prefix, sys.base_prefix, str(interpreter)]


def _write_pod(pod_dir: PodDir, pod: dict[str, Any]) -> None:
    write_json_atomic(pod_dir.pod_file, pod)
