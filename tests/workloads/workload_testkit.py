"""Helpers for the workload controller tests: hand-made nodes, a stand-in for the
kubelets, and waiting for outcomes.

There are no kubelets here. Nodes are created through the API with the status a
kubelet would report; FakeKubelet does the two things of a kubelet the controllers
depend on: it reports bound pods Running and Ready (with a pod IP), and confirms the
graceful deletion of bound pods (the API server keeps them until their node says
they are gone).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from kube_client.rawapi import MERGE_PATCH, STRATEGIC_PATCH, call
from kube_client.timestamps import now_text

Obj = dict[str, Any]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(0.05)


def patch(method: Callable[..., Any], *args: Any, content_type: str = MERGE_PATCH) -> Obj:
    """A patch that carries no resourceVersion, retried on Conflict.

    Upstream never answers such a patch with 409 (it retries on the server). The local
    API server does when another writer (here: a controller writing status) gets in
    between, because it mistakes the stored object's resourceVersion for one pinned by
    the patch (reported; local_cluster/apiserver/rest.py Objects.patch). Tests should
    not fail on that, so they retry as a client would.
    """
    for attempt in range(20):
        try:
            return call(method, *args, _content_type=content_type)
        except client.ApiException as error:
            if error.status != 409 or attempt == 19:
                raise
            time.sleep(0.02)
    raise AssertionError("unreachable")


def quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except client.ApiException:
        pass


class Cluster:
    """One test's namespace and nodes, removed afterwards."""

    def __init__(self, core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> None:
        self.core = core
        self.apps = apps
        self.namespace = namespace
        self.nodes: list[str] = []

    # --- nodes ------------------------------------------------------------------------

    def node(self, name: str, *, labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
             unschedulable: bool = False, ready: str = "True") -> str:
        full = f"{self.namespace}-{name}"
        resources = {"cpu": "8", "memory": "16Gi", "pods": "110"}
        call(self.core.create_node, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": full, "labels": {"kubernetes.io/hostname": full, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                       "lastHeartbeatTime": now_text(), "lastTransitionTime": now_text()}]}})
        self.nodes.append(full)
        return full

    def set_node_ready(self, node: str, ready: str) -> None:
        patch(self.core.patch_node_status, node, {"status": {"conditions": [
            {"type": "Ready", "status": ready, "reason": "KubeletReady", "lastTransitionTime": now_text()}]}},
              content_type=STRATEGIC_PATCH)

    def set_node_taints(self, node: str, taints: list[Obj]) -> None:
        patch(self.core.patch_node, node, {"spec": {"taints": taints}})

    def delete_node(self, node: str) -> None:
        call(self.core.delete_node, node)
        self.nodes.remove(node)

    # --- pods -------------------------------------------------------------------------

    def pods(self, label_selector: str | None = None) -> list[Obj]:
        kwargs = {"label_selector": label_selector} if label_selector else {}
        return call(self.core.list_namespaced_pod, self.namespace, **kwargs).get("items") or []

    def live_pods(self, label_selector: str | None = None) -> list[Obj]:
        """Pods not being deleted."""
        return [p for p in self.pods(label_selector) if not p["metadata"].get("deletionTimestamp")]

    def set_phase(self, name: str, phase: str) -> None:
        ready = "True" if phase == "Running" else "False"
        patch(self.core.patch_namespaced_pod_status, name, self.namespace, {"status": {
            "phase": phase, "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now_text()}]}},
              content_type=STRATEGIC_PATCH)

    def events(self, reason: str) -> list[Obj]:
        items = call(self.core.list_namespaced_event, self.namespace).get("items") or []
        return [e for e in items if e.get("reason") == reason]

    def cleanup(self) -> None:
        for kind_delete, kind_list in (
                (self.apps.delete_namespaced_deployment, self.apps.list_namespaced_deployment),
                (self.apps.delete_namespaced_daemon_set, self.apps.list_namespaced_daemon_set),
                (self.apps.delete_namespaced_replica_set, self.apps.list_namespaced_replica_set)):
            for item in call(kind_list, self.namespace).get("items") or []:
                quietly(lambda: call(kind_delete, item["metadata"]["name"], self.namespace,
                                     body={"propagationPolicy": "Orphan"}))
        for pod in self.pods():
            quietly(lambda: call(self.core.delete_namespaced_pod, pod["metadata"]["name"], self.namespace,
                                 grace_period_seconds=0))
        for node in list(self.nodes):
            quietly(lambda: call(self.core.delete_node, node))
        quietly(lambda: call(self.core.delete_namespace, self.namespace))


def node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class FakeKubelet:
    """Makes bound pods of one namespace Running and Ready, and confirms deletions."""

    def __init__(self, core: client.CoreV1Api, namespace: str, *, interval: float = 0.05) -> None:
        self._core = core
        self._namespace = namespace
        self._interval = interval
        self._stopping = threading.Event()
        # Cleared: bound pods are left not ready (deletions are still confirmed).
        self.running = threading.Event()
        self.running.set()
        self._addresses = itertools.count(2)
        self._thread = threading.Thread(target=self._run, name="fake-kubelet", daemon=True)

    def start(self) -> FakeKubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._once()
            except client.ApiException:
                pass  # a pod went away under us: the next round sees the new state

    def _once(self) -> None:
        for pod in call(self._core.list_namespaced_pod, self._namespace).get("items") or []:
            meta = pod["metadata"]
            if not node_of(pod):
                continue
            if meta.get("deletionTimestamp"):
                quietly(lambda: call(self._core.delete_namespaced_pod, meta["name"], self._namespace,
                                     grace_period_seconds=0))
            elif (self.running.is_set() and not is_ready(pod)
                  and (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded")):
                address = next(self._addresses)
                quietly(lambda: call(self._core.patch_namespaced_pod_status, meta["name"], self._namespace, {
                    "status": {"phase": "Running", "podIP": f"10.244.{address // 250}.{address % 250 + 2}",
                               "conditions": [{"type": "Ready", "status": "True",
                                               "lastTransitionTime": now_text()},
                                              {"type": "ContainersReady", "status": "True",
                                               "lastTransitionTime": now_text()}]}},
                                     _content_type=STRATEGIC_PATCH))
