"""Helpers for the scheduler tests: hand-made nodes and pods, and waiting for outcomes.

There is no kubelet here: nodes are created through the API with the status a
kubelet would report, and they are deleted (with the test's pods) after each test
so one test's nodes never take another test's pods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from kube_client.rawapi import call
from tests.wait import eventually as wait_for

Obj = dict[str, Any]



class Cluster:
    """Nodes and pods made through the API for one test, cleaned up afterwards."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core = core
        self.namespace = namespace
        self.prefix = namespace
        self.nodes: list[str] = []

    def node(self, name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
             labels: dict[str, str] | None = None, taints: list[Obj] | None = None, unschedulable: bool = False,
             ready: str = "True", extra: dict[str, str] | None = None) -> str:
        full = f"{self.prefix}-{name}"
        resources = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": full, "labels": {"kubernetes.io/hostname": full, **(labels or {})}},
                "spec": {"taints": taints or [], "unschedulable": unschedulable},
                "status": {"capacity": resources, "allocatable": resources,
                           "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]}}
        call(self.core.create_node, body)
        self.nodes.append(full)
        return full

    def pod(self, name: str, *, cpu: str | None = None, memory: str | None = None, spec: Obj | None = None,
            labels: dict[str, str] | None = None, extra_requests: dict[str, str] | None = None) -> str:
        requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        requests.update(extra_requests or {})
        container: Obj = {"name": "main", "image": "busybox"}
        if requests:
            container["resources"] = {"requests": requests}
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
                "spec": {"containers": [container], **(spec or {})}}
        call(self.core.create_namespaced_pod, self.namespace, body)
        return name

    def get_pod(self, name: str) -> Obj:
        return call(self.core.read_namespaced_pod, name, self.namespace)

    def node_of(self, name: str) -> str:
        return (self.get_pod(name).get("spec") or {}).get("nodeName") or ""

    def wait_bound(self, name: str, timeout: float = 10.0) -> str:
        return wait_for(lambda: self.node_of(name), timeout, f"pod {name} to be bound")

    def scheduled_condition(self, name: str) -> Obj:
        conditions = (self.get_pod(name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c.get("type") == "PodScheduled"), {})

    def wait_unschedulable(self, name: str, message: str | None = None, timeout: float = 10.0) -> Obj:
        """The PodScheduled condition once it says Unschedulable (with this message, if given).

        An earlier attempt may have seen fewer nodes than the test made (the node and
        pod watches are separate streams), so the message is waited for, not read once.
        """
        def unschedulable() -> Obj:
            condition = self.scheduled_condition(name)
            if condition.get("reason") != "Unschedulable":
                return {}
            return condition if message is None or condition.get("message") == message else {}
        try:
            return wait_for(unschedulable, timeout, f"pod {name} to be reported unschedulable")
        except AssertionError:
            raise AssertionError(f"pod {name}: PodScheduled is {self.scheduled_condition(name)}, "
                                 f"wanted Unschedulable with {message!r}") from None

    def events(self, name: str) -> list[Obj]:
        listed = call(self.core.list_namespaced_event, self.namespace)
        return [e for e in listed.get("items") or [] if (e.get("involvedObject") or {}).get("name") == name]

    def set_unschedulable(self, node: str, value: bool) -> None:
        call(self.core.patch_node, node, {"spec": {"unschedulable": value}},
             _content_type="application/merge-patch+json")

    def cleanup(self) -> None:
        listed = call(self.core.list_namespaced_pod, self.namespace)
        for pod in listed.get("items") or []:
            _quietly(lambda: call(self.core.delete_namespaced_pod, pod["metadata"]["name"], self.namespace,
                                  grace_period_seconds=0))
        for node in self.nodes:
            _quietly(lambda: call(self.core.delete_node, node))
        _quietly(lambda: call(self.core.delete_namespace, self.namespace))


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except client.ApiException:
        pass
