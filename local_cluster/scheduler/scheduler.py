"""The scheduler: binds pending pods to nodes through the API, as kube-scheduler does.

Pods, nodes and namespaces are followed with list+watch (reflector.py); one loop
thread takes the pods that are due (pending.py), filters the nodes against a
snapshot of the cluster (filters.py), picks one (scoring.py) and binds the pod with
the pods/binding subresource. A pod that fits nowhere gets PodScheduled=False with
the reasons, and a FailedScheduling event, and is tried again when the cluster
changes. Everything goes through the official kubernetes client, so it runs
against any API server.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client

from local_cluster.scheduler.diagnosis import unschedulable_message
from local_cluster.scheduler.filters import PodFacts, feasible_nodes
from local_cluster.scheduler.labels import labels_of
from local_cluster.scheduler.pending import PendingPods
from kube_client.rawapi import STRATEGIC_PATCH, call, object_key, status_code
from kube_client.recorder import NORMAL, WARNING, EventRecorder
from kube_client.timestamps import now_text
from kube_client.reflector import DELETED, Change, Reflector, stop_and_join
from local_cluster.scheduler.resources import is_terminated
from local_cluster.scheduler.scoring import choose_node
from local_cluster.scheduler.snapshot import Snapshot, build_snapshot

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_SCHEDULER = "default-scheduler"
POD_SCHEDULED = "PodScheduled"
# A pod we bound counts on its node until the watch shows the binding; if that never
# comes (the pod vanished in between), stop counting it after this long.
ASSUME_SECONDS = 30.0
_IDLE_WAIT = 1.0
# Bindings in flight at once.
BINDING_WORKERS = 8


class Scheduler:
    def __init__(self, api_client: client.ApiClient, *, scheduler_name: str = DEFAULT_SCHEDULER,
                 retry_interval: float = 30.0, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 rng: random.Random | None = None) -> None:
        self.name = scheduler_name
        self._core = client.CoreV1Api(api_client)
        self._recorder = EventRecorder(api_client, scheduler_name)
        self._pending = PendingPods(initial_backoff=initial_backoff, max_backoff=max_backoff,
                                    retry_interval=retry_interval)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        # pod key -> (node name, monotonic deadline)
        self._assumed: dict[str, tuple[str, float]] = {}
        # Pods given PodScheduled=False by us, whose condition the binding must clear.
        self._reported: set[str] = set()
        self._pods = Reflector("pods", self._core.list_pod_for_all_namespaces, self._on_pod)
        self._nodes = Reflector("nodes", self._core.list_node, self._on_node)
        self._namespaces = Reflector("namespaces", self._core.list_namespace, self._on_namespace)
        self._reflectors = (self._pods, self._nodes, self._namespaces)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._binder = ThreadPoolExecutor(BINDING_WORKERS, thread_name_prefix="scheduler-bind")

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self._stopping.is_set():
            raise RuntimeError("the scheduler is running or was stopped; make a new one")
        for reflector in self._reflectors:
            reflector.start()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def wait_synced(self, timeout: float) -> bool:
        """True once pods, nodes and namespaces have been listed."""
        deadline = time.monotonic() + timeout
        return all(r.synced.wait(max(0.0, deadline - time.monotonic())) for r in self._reflectors)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._pending.close()
        stop_and_join(self._reflectors, self._thread, "the scheduling loop", timeout)
        self._thread = None
        # Bindings under way finish on their own (each call is bounded); none starts anew.
        self._binder.shutdown(wait=False, cancel_futures=True)

    # --- what the watches report ------------------------------------------------------

    def _wants(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return ((spec.get("schedulerName") or DEFAULT_SCHEDULER) == self.name
                and not spec.get("nodeName")
                and not (pod.get("metadata") or {}).get("deletionTimestamp")
                and not spec.get("schedulingGates")
                and not is_terminated(pod))

    def _on_pod(self, change: Change) -> None:
        pod, key = change.obj, object_key(change.obj)
        if change.type != DELETED and self._wants(pod):
            self._pending.add(key, int((pod.get("spec") or {}).get("priority") or 0),
                              changed=_spec_or_labels_changed(change.old, pod))
            return
        self._pending.remove(key)
        if change.type == DELETED or (pod.get("spec") or {}).get("nodeName"):
            with self._lock:
                self._assumed.pop(key, None)
                if change.type == DELETED:
                    self._reported.discard(key)
        if _frees_or_fills_a_node(change):
            self._pending.cluster_changed()

    def _on_node(self, change: Change) -> None:
        if change.type == DELETED or change.old is None or _node_view(change.old) != _node_view(change.obj):
            self._pending.cluster_changed()

    def _on_namespace(self, change: Change) -> None:
        # Namespace labels decide which pods an affinity term's namespaceSelector covers.
        if change.old is None or labels_of(change.old) != labels_of(change.obj):
            self._pending.cluster_changed()

    # --- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set() and not all(r.synced.is_set() for r in self._reflectors):
            self._stopping.wait(0.05)
        while not self._stopping.is_set():
            keys = self._pending.take_ready(_IDLE_WAIT)
            self._expire_assumed()
            if not keys:
                continue
            snapshot = self._snapshot()
            for key in keys:
                if self._stopping.is_set():
                    return
                try:
                    self._attempt(key, snapshot)
                except Exception:  # one pod's failure must not stop the others being scheduled
                    log.exception("scheduling %s failed", key)
                    self._pending.failed(key, unschedulable=False)

    def _snapshot(self) -> Snapshot:
        with self._lock:
            assumed = {key: node for key, (node, _) in self._assumed.items()}
        return build_snapshot(self._nodes.items(), self._pods.items(), assumed, self._namespaces.items())

    def _expire_assumed(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [key for key, (_, deadline) in self._assumed.items() if deadline <= now]
            for key in expired:
                del self._assumed[key]
        for key in expired:
            pod = self._pods.get(key)
            if pod is not None and self._wants(pod):
                self._pending.add(key, int((pod.get("spec") or {}).get("priority") or 0), changed=True)

    def _attempt(self, key: str, snapshot: Snapshot) -> None:
        pod = self._pods.get(key)
        with self._lock:
            assumed = key in self._assumed
        if pod is None or not self._wants(pod) or assumed:
            self._pending.remove(key)
            return
        facts = PodFacts(pod, snapshot)
        feasible, failures = feasible_nodes(facts)
        if not feasible:
            self._pending.failed(key, unschedulable=True)
            self._report_unschedulable(pod, unschedulable_message(len(snapshot.nodes), failures))
            return
        node = choose_node(pod, facts.requests, feasible, self._rng).name
        # Assumed on the node from now on; the binding itself runs apart (as kube-scheduler's
        # binding cycle does), so the next pod need not wait for this one's API calls.
        with self._lock:
            self._assumed[key] = (node, time.monotonic() + ASSUME_SECONDS)
        snapshot.place(pod, node)
        self._pending.remove(key)
        self._binder.submit(self._binding_cycle, key, pod, node)

    def _binding_cycle(self, key: str, pod: Obj, node: str) -> None:
        try:
            self._bind(pod, node)
        except Exception as error:
            with self._lock:
                self._assumed.pop(key, None)
            self._pending.failed(key, unschedulable=False)
            if status_code(error) not in (404, 409):  # gone or bound by someone else: nothing to report
                log.warning("binding %s to %s failed: %s", key, node, error)
                self._recorder.record("Pod", pod, WARNING, "FailedScheduling", f"Binding rejected: {error}")
            return
        log.info("bound %s to %s", key, node)
        self._after_bind(pod, node)

    # --- API writes -------------------------------------------------------------------

    def _bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        binding = client.V1Binding(
            metadata=client.V1ObjectMeta(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid")),
            target=client.V1ObjectReference(kind="Node", api_version="v1", name=node))
        call(self._core.create_namespaced_pod_binding, meta["name"], meta["namespace"], binding)

    def _after_bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        self._recorder.record("Pod", pod, NORMAL, "Scheduled",
                              f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}")
        previous = _condition(pod, POD_SCHEDULED) or {}
        with self._lock:
            reported = object_key(pod) in self._reported
            self._reported.discard(object_key(pod))
        if reported or previous.get("reason") or previous.get("message"):
            # The binding turns PodScheduled True but the local API server keeps the
            # old Unschedulable reason and message on it: clear them.
            self._patch_condition(pod, {"type": POD_SCHEDULED, "status": "True", "reason": None, "message": None})

    def _report_unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod["metadata"]
        log.info("%s/%s is unschedulable: %s", meta.get("namespace"), meta.get("name"), message)
        previous = _condition(pod, POD_SCHEDULED) or {}
        if (previous.get("status"), previous.get("reason"), previous.get("message")) != (
                "False", "Unschedulable", message):
            since = previous.get("lastTransitionTime") if previous.get("status") == "False" else None
            self._patch_condition(pod, {"type": POD_SCHEDULED, "status": "False", "reason": "Unschedulable",
                                        "message": message, "lastProbeTime": None,
                                        "lastTransitionTime": since or now_text()})
            with self._lock:
                self._reported.add(object_key(pod))
        self._recorder.record("Pod", pod, WARNING, "FailedScheduling", message)

    def _patch_condition(self, pod: Obj, condition: Obj) -> None:
        meta = pod["metadata"]
        try:
            call(self._core.patch_namespaced_pod_status, meta["name"], meta["namespace"],
                 {"status": {"conditions": [condition]}}, _content_type=STRATEGIC_PATCH)
        except Exception as error:
            if status_code(error) != 404:
                log.warning("could not update the PodScheduled condition of %s: %s", object_key(pod), error)


def _condition(pod: Obj, kind: str) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _spec_or_labels_changed(old: Obj | None, new: Obj) -> bool:
    if old is None:
        return True
    return old.get("spec") != new.get("spec") or labels_of(old) != labels_of(new)


def _occupies_node(pod: Obj | None) -> bool:
    return pod is not None and bool((pod.get("spec") or {}).get("nodeName")) and not is_terminated(pod)


def _frees_or_fills_a_node(change: Change) -> bool:
    """Whether a pod change can make another pod fit: resources freed or taken, affinity domains changed."""
    was = _occupies_node(change.old)
    if change.type == DELETED:
        return was or _occupies_node(change.obj)
    now = _occupies_node(change.obj)
    if was != now:
        return True
    return now and labels_of(change.old or {}) != labels_of(change.obj)


def _node_view(node: Obj) -> tuple[Any, ...]:
    """The parts of a node scheduling depends on (not heartbeats)."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    ready = _condition(node, "Ready") or {}
    return (labels_of(node), spec.get("taints"), spec.get("unschedulable"), status.get("allocatable"),
            status.get("capacity"), ready.get("status"))
