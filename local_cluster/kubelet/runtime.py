"""The node-local pod runtime the kubelet agent drives: one PodWorker per pod,
pod IPs, and recovery of the pods a previous kubelet process left running.

The agent's loop, in short:

    runtime = PodRuntime(NodeConfig(root=..., node_name="node-1", node_index=1,
                                    image_store=...), on_status=publish)
    runtime.recover()                     # once, at start: adopt pods on disk
    ...for every pod bound to this node (and on every change to it or to what it
       references, see pod_references):
    runtime.sync_pod(pod, PodSources(config_maps=..., secrets=..., claims=...))
    ...when the pod is deleted: sync_pod with the deletionTimestamp set (or
       terminate_pod), then once runtime.is_terminated(uid): remove_pod(uid)
    runtime.close()                       # kubelet exit: pods keep running

on_status(uid, status) is called from the pod's worker thread whenever the status
a kubelet would PATCH changes; status(uid) returns the same on demand.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_cluster.kubelet.backoff import BackoffPolicy
from local_cluster.kubelet.images import ImageResolver
from local_cluster.kubelet.ip_allocator import LoopbackIPAllocator, node_host_ip
from oci_layout.rooted_paths import pod_uid
from local_cluster.kubelet.log_selection import LogUnavailable, select_run
from local_cluster.kubelet.pod_dir import PodDir
from local_cluster.kubelet.pod_sources import PodSources
from local_cluster.kubelet.host_paths import NodeHostPaths
from local_cluster.kubelet.pod_worker import PodWorker, StatusCallback, WorkerSettings, pod_uid_of

log = logging.getLogger(__name__)


class PodStillRunning(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeConfig:
    root: Path
    node_name: str
    # Pods of this node get 127.<node_index>.x.y; the index must be unique among
    # the nodes sharing this machine (allocations are per node state directory).
    node_index: int = 1
    # The node's address (hostNetwork pods share it); default 127.<node_index>.0.1.
    host_ip: str | None = None
    # The local OCI image layout images are "pulled" from.
    image_store: Path | None = None
    # Where unpacked images are cached; default <root>/images.
    image_cache: Path | None = None
    # Where this node keeps its copy of node-private host paths (/var/run/kubevirt...);
    # None: they are the machine's own, for a node alone on its machine.
    host_root: Path | None = None
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    python: str = sys.executable
    poll_interval: float = 0.1
    retry_interval: float = 2.0
    kill_timeout: float = 5.0

    @property
    def effective_host_ip(self) -> str:
        return self.host_ip or node_host_ip(self.node_index)


class PodRuntime:
    def __init__(self, config: NodeConfig, on_status: StatusCallback | None = None) -> None:
        self.config = config
        self._on_status = on_status
        config.root.mkdir(parents=True, exist_ok=True)
        (config.root / "pods").mkdir(exist_ok=True)
        self._ips = LoopbackIPAllocator(config.root / "pod-ips.json", config.node_index)
        self._settings = WorkerSettings(
            node_name=config.node_name,
            images=ImageResolver(config.image_store, config.image_cache or config.root / "images", config.python),
            host_paths=NodeHostPaths(config.host_root),
            backoff=config.backoff,
            python=config.python,
            poll_interval=config.poll_interval,
            retry_interval=config.retry_interval,
            kill_timeout=config.kill_timeout,
        )
        self._lock = threading.Lock()
        self._workers: dict[str, PodWorker] = {}

    def sync_pod(self, pod: dict[str, Any], sources: PodSources) -> None:
        """Run the pod if it is new here, otherwise hand the worker the newer pod and
        objects. A pod with a deletionTimestamp is terminated gracefully.

        Raises ValueError (UnsafePath among them) for a pod that cannot be run at
        all: no containers, invalid or duplicate container names, an unusable uid."""
        uid = pod_uid(pod_uid_of(pod))
        with self._lock:
            worker = self._workers.get(uid)
            if worker is None:
                deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
                if deleting:
                    return  # never started here: nothing to stop
                worker = self._create(pod, uid, sources)
                self._workers[uid] = worker
                worker.start()
                return
        worker.update(pod, sources)

    def _create(self, pod: dict[str, Any], uid: str, sources: PodSources) -> PodWorker:
        host_ip = self.config.effective_host_ip
        pod_ip = host_ip if (pod.get("spec") or {}).get("hostNetwork") else self._ips.allocate(uid)
        return PodWorker.create(
            pod, PodDir.under(self.config.root, uid), self._settings, pod_ip, host_ip, sources, self._on_status
        )

    def status(self, uid: str) -> dict[str, Any] | None:
        worker = self._worker(uid)
        return worker.status() if worker else None

    def pod_uids(self) -> list[str]:
        with self._lock:
            return sorted(self._workers)

    def terminate_pod(self, uid: str, grace_seconds: float | None = None) -> None:
        """SIGTERM every container, SIGKILL after the grace period (default: the pod's
        deletionGracePeriodSeconds, else terminationGracePeriodSeconds, else 30)."""
        worker = self._worker(uid)
        if worker is not None:
            worker.terminate(grace_seconds)

    def wait_terminated(self, uid: str, timeout: float) -> bool:
        worker = self._worker(uid)
        return True if worker is None else worker.wait_terminated(timeout)

    def is_terminated(self, uid: str) -> bool:
        worker = self._worker(uid)
        return worker is None or worker.terminated

    def remove_pod(self, uid: str) -> None:
        """Forget a terminated pod: its directory (volumes, logs) and its IP."""
        with self._lock:
            worker = self._workers.get(uid)
            if worker is not None and not worker.terminated:
                raise PodStillRunning(f"pod {uid} must be terminated before it is removed")
            self._workers.pop(uid, None)
        if worker is not None:
            worker.close()
        shutil.rmtree(PodDir.under(self.config.root, uid).path, ignore_errors=True)
        self._ips.release(uid)

    def log_path(self, uid: str, container: str, previous: bool = False) -> Path | None:
        """The log file `kubectl logs [--previous]` reads, if that run exists."""
        status = self.status(uid)
        if status is None:
            return None
        try:
            run = select_run(status, uid, container, previous)
        except LogUnavailable:
            return None
        path = PodDir.under(self.config.root, uid).log_file(container, run.attempt)
        return path if path.exists() else None

    def recover(self) -> list[str]:
        """Adopt every pod a previous kubelet process left in the state directory.
        Running containers are kept; the agent should then sync_pod each pod that
        still exists in the API, and terminate_pod + remove_pod the others."""
        adopted: list[str] = []
        for entry in sorted((self.config.root / "pods").iterdir()):
            pod_dir = PodDir(entry)
            with self._lock:
                if entry.name in self._workers:
                    continue
            if not (pod_dir.pod_file.is_file() and pod_dir.state_file.is_file()):
                log.warning("ignoring %s: not a complete pod directory", entry)
                continue
            try:
                worker = PodWorker.adopt(pod_dir, self._settings, self._on_status)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("cannot adopt pod in %s: %s", entry, exc)
                continue
            with self._lock:
                self._workers[worker.uid] = worker
            worker.start()
            adopted.append(worker.uid)
        return adopted

    def stop_all(self, grace_seconds: float | None = None, timeout: float = 60.0) -> bool:
        """Terminate every pod and wait; True when all stopped within timeout."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.terminate(grace_seconds)
        deadline = time.monotonic() + timeout
        return all(worker.wait_terminated(max(0.0, deadline - time.monotonic())) for worker in workers)

    def close(self) -> None:
        """Stop supervising; every container keeps running for the next kubelet."""
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.close()

    def _worker(self, uid: str) -> PodWorker | None:
        with self._lock:
            return self._workers.get(uid)
