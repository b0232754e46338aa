"""The scheduling rules on their own, without an API server."""

from __future__ import annotations

from decimal import Decimal

from local_cluster.scheduler.diagnosis import unschedulable_message
from local_cluster.scheduler.labels import requirement_matches, selector_matches
from local_cluster.scheduler.pending import PendingPods
from local_cluster.scheduler.pod_affinity import InterPodAffinity
from local_cluster.scheduler.resources import pod_requests
from local_cluster.scheduler.snapshot import build_snapshot
from local_cluster.scheduler.taints import scheduling_taints, tolerates

MI = 1024 * 1024


def _container(name: str, memory: str, **extra: object) -> dict:
    return {"name": name, "image": "x", "resources": {"requests": {"memory": memory}}, **extra}


def test_pod_requests_take_the_busiest_moment() -> None:
    pod = {"spec": {
        "containers": [_container("a", "100Mi"), _container("b", "200Mi")],
        "initContainers": [_container("sidecar", "50Mi", restartPolicy="Always"), _container("setup", "500Mi")],
        "overhead": {"memory": "10Mi", "cpu": "250m"}}}
    # setup runs next to the sidecar: 550Mi beats 300Mi + 50Mi; then the overhead.
    assert pod_requests(pod) == {"memory": Decimal(560 * MI), "cpu": Decimal("0.25")}
    small_init = {"spec": {"containers": [_container("a", "100Mi")],
                           "initContainers": [_container("sidecar", "50Mi", restartPolicy="Always"),
                                              _container("setup", "20Mi")]}}
    assert pod_requests(small_init) == {"memory": Decimal(150 * MI)}


def test_tolerations() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates([{"key": "k", "operator": "Equal", "value": "v"}], taint)
    assert tolerates([{"key": "k", "value": "v", "effect": "NoSchedule"}], taint)  # Equal is the default
    assert not tolerates([{"key": "k", "value": "w"}], taint)
    assert not tolerates([{"key": "k", "operator": "Exists", "effect": "NoExecute"}], taint)
    assert tolerates([{"key": "k", "operator": "Exists"}], taint)
    assert tolerates([{"operator": "Exists"}], taint)
    assert not tolerates([{"operator": "Equal"}], taint)


def test_readiness_and_soft_taints() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]},
             "spec": {"taints": [{"key": "soft", "effect": "PreferNoSchedule"}]}}
    assert scheduling_taints(ready) == []
    unknown = {"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert scheduling_taints(unknown) == [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    assert scheduling_taints({})[0]["key"] == "node.kubernetes.io/unreachable"


def test_selectors() -> None:
    labels = {"app": "web", "tier": "front"}
    assert selector_matches({}, labels)
    assert not selector_matches(None, labels)
    assert selector_matches({"matchLabels": {"app": "web"},
                             "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]},
                                                  {"key": "gone", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
                                labels)
    assert requirement_matches({"key": "n", "operator": "Gt", "values": ["3"]}, {"n": "4"})
    assert not requirement_matches({"key": "n", "operator": "Lt", "values": ["3"]}, {"n": "x"})
    assert not requirement_matches({"key": "n", "operator": "Gt", "values": ["3"]}, {})


def test_message_orders_reasons_as_kube_scheduler() -> None:
    failures = {"a": ["node(s) didn't match Pod's node affinity/selector"], "b": ["Insufficient memory"],
                "c": ["Insufficient cpu", "Insufficient memory"]}
    assert unschedulable_message(3, failures) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector, "
        "2 Insufficient memory.")
    assert unschedulable_message(0, {}) == "0/0 nodes are available: no nodes available to schedule pods."


def test_anti_affinity_of_placed_pods_and_namespace_selectors() -> None:
    nodes = [{"metadata": {"name": n, "labels": {"zone": z}}} for n, z in (("a", "z1"), ("b", "z1"), ("c", "z2"))]
    guard = {"metadata": {"name": "guard", "namespace": "prod"}, "spec": {"nodeName": "a", "affinity": {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"noisy": "yes"}}, "topologyKey": "zone",
             "namespaceSelector": {"matchLabels": {"team": "blue"}}}]}}}}
    namespaces = [{"metadata": {"name": "dev", "labels": {"team": "blue"}}},
                  {"metadata": {"name": "qa", "labels": {"team": "red"}}}]
    snapshot = build_snapshot(nodes, [guard], {}, namespaces)
    noisy_dev = {"metadata": {"name": "x", "namespace": "dev", "labels": {"noisy": "yes"}}, "spec": {}}
    rules = InterPodAffinity(noisy_dev, snapshot)
    assert [rules.failure(n) for n in nodes] == [
        "node(s) didn't satisfy existing pods anti-affinity rules"] * 2 + [None]
    noisy_qa = {"metadata": {"name": "y", "namespace": "qa", "labels": {"noisy": "yes"}}, "spec": {}}
    assert [InterPodAffinity(noisy_qa, snapshot).failure(n) for n in nodes] == [None, None, None]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pending_pods_back_off_and_wake_on_change() -> None:
    clock = _Clock()
    pending = PendingPods(initial_backoff=1.0, max_backoff=4.0, retry_interval=30.0, clock=clock)
    pending.add("ns/low", 0, changed=True)
    pending.add("ns/high", 10, changed=True)
    assert pending.take_ready(0) == ["ns/high", "ns/low"]
    assert pending.take_ready(0) == []  # both are being tried
    pending.failed("ns/high", unschedulable=True)
    pending.failed("ns/low", unschedulable=False)
    clock.now += 1.0
    assert pending.take_ready(0) == ["ns/low"]  # an error only backs off
    pending.failed("ns/low", unschedulable=False)  # second failure: 2s
    clock.now += 1.5
    assert pending.take_ready(0) == []
    pending.cluster_changed()  # high waited for a change and its 1s back-off has passed
    assert pending.take_ready(0) == ["ns/high"]
    pending.failed("ns/high", unschedulable=True)
    clock.now += 29.0
    assert pending.take_ready(0) == ["ns/low"]
    pending.remove("ns/low")
    clock.now += 2.0
    assert pending.take_ready(0) == ["ns/high"]  # the periodic retry
    # A change that lands during an attempt is not lost to that attempt.
    pending.cluster_changed()
    pending.failed("ns/high", unschedulable=True)
    clock.now += 4.0
    assert pending.take_ready(0) == ["ns/high"]
