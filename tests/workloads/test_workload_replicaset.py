"""The ReplicaSet controller against the local API server, with the real scheduler."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from workload_testkit import patch, Cluster, FakeKubelet, is_ready, wait_for

from kube_client.controller.resource import ListMethod
from kube_client.rawapi import call
from local_cluster.workloads import WorkloadControllers, WorkloadInformers

Obj = dict[str, Any]


def replica_set(name: str, replicas: int, labels: dict[str, str] | None = None) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": {**labels, "extra": "yes"}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox:1"}]}}}}


def read(cluster: Cluster, name: str) -> Obj:
    return call(cluster.apps.read_namespaced_replica_set, name, cluster.namespace)


def scale(cluster: Cluster, name: str, replicas: int) -> None:
    patch(cluster.apps.patch_namespaced_replica_set_scale, name, cluster.namespace, {"spec": {"replicas": replicas}})


def owned(cluster: Cluster, rs: Obj) -> list[Obj]:
    uid = rs["metadata"]["uid"]
    return [p for p in cluster.live_pods()
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]


def status_is(cluster: Cluster, name: str, **wanted: int) -> Obj | None:
    status = read(cluster, name).get("status") or {}
    return status if all(status.get(k, 0) == v for k, v in wanted.items()) else None


def test_scale_through_the_scale_subresource(cluster: Cluster, kubelet: FakeKubelet, workloads) -> None:
    cluster.node("a")
    cluster.node("b")
    rs = call(cluster.apps.create_namespaced_replica_set, cluster.namespace, replica_set("web", 2))
    wait_for(lambda: status_is(cluster, "web", replicas=2, readyReplicas=2, availableReplicas=2,
                               fullyLabeledReplicas=2, observedGeneration=1), what="two ready replicas")
    first = owned(cluster, rs)
    assert len(first) == 2
    for pod in first:
        assert pod["metadata"]["generateName"] == "web-"
        assert pod["metadata"]["labels"] == {"app": "web", "extra": "yes"}
        assert pod["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                       "uid": rs["metadata"]["uid"], "controller": True,
                                                       "blockOwnerDeletion": True}]

    # Up to 5, with the new pods kept from becoming ready ...
    kubelet.running.clear()
    scale(cluster, "web", 5)
    wait_for(lambda: status_is(cluster, "web", replicas=5, readyReplicas=2, observedGeneration=2),
             what="five replicas, two ready")
    # ... then down to 2: the pods that are not ready go first, the ready ones stay.
    scale(cluster, "web", 2)
    wait_for(lambda: status_is(cluster, "web", replicas=2, readyReplicas=2, observedGeneration=3),
             what="back to two replicas")
    wait_for(lambda: len(owned(cluster, rs)) == 2, what="the extra pods deleted")
    assert {p["metadata"]["uid"] for p in owned(cluster, rs)} == {p["metadata"]["uid"] for p in first}
    kubelet.running.set()
    assert call(cluster.apps.read_namespaced_replica_set_scale, "web", cluster.namespace)["spec"]["replicas"] == 2

    scale(cluster, "web", 0)
    wait_for(lambda: not owned(cluster, rs) and status_is(cluster, "web", replicas=0), what="no pods")
    status = read(cluster, "web")["status"]
    assert "readyReplicas" not in status and "availableReplicas" not in status  # omitted when zero


class LaggingWatch:
    """Delivers every chunk of the pod watch `delay` seconds late, as a slow informer would."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def wrap(self, kind: str, method: ListMethod) -> ListMethod:
        if kind != "pods":
            return method

        def listing(**kwargs: Any) -> Any:
            response = method(**kwargs)
            return _Late(response, self.delay) if kwargs.get("watch") else response
        return listing


class _Late:
    def __init__(self, response: Any, delay: float) -> None:
        self._response = response
        self._delay = delay

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for chunk in self._response.stream(*args, **kwargs):
            time.sleep(self._delay)
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._response, name)


@pytest.fixture
def lagging(control_plane, cluster: Cluster, scheduler, kubelet) -> Iterator[WorkloadControllers]:
    own_client = control_plane.api_client()
    informers = WorkloadInformers(own_client, namespace=cluster.namespace, wrap=LaggingWatch(0.25).wrap)
    controllers = WorkloadControllers(own_client, informers=informers)
    controllers.start()
    try:
        assert controllers.wait_synced(10)
        yield controllers
    finally:
        assert controllers.stop()
        own_client.close()


def test_a_lagging_pod_watch_never_doubles_the_pods(cluster: Cluster, lagging: WorkloadControllers) -> None:
    cluster.node("a")
    rs = call(cluster.apps.create_namespaced_replica_set, cluster.namespace, replica_set("slow", 3))
    wait_for(lambda: len(owned(cluster, rs)) >= 3, what="three pods created")
    # The controller has made its pods but its cache has not seen them all yet: make it
    # look again and again while it cannot see them.
    assert len(lagging.informers.pods.list(cluster.namespace)) < 3, "the pod watch did not lag"
    for round_ in range(6):
        patch(cluster.apps.patch_namespaced_replica_set, "slow", cluster.namespace,
             {"metadata": {"annotations": {"poke": str(round_)}}})
        time.sleep(0.1)
    wait_for(lambda: status_is(cluster, "slow", replicas=3, readyReplicas=3), timeout=20, what="three ready")
    time.sleep(1.0)
    assert len(owned(cluster, rs)) == 3
    assert len(cluster.pods()) == 3


def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(cluster: Cluster, workloads) -> None:
    cluster.node("a")
    container = {"containers": [{"name": "main", "image": "busybox:1"}]}
    orphan = call(cluster.core.create_namespaced_pod, cluster.namespace,
                  {"metadata": {"name": "orphan", "labels": {"app": "db"}}, "spec": container})
    # A matching pod that something else manages is left alone.
    other = call(cluster.core.create_namespaced_config_map, cluster.namespace, {"metadata": {"name": "someone"}})
    call(cluster.core.create_namespaced_pod, cluster.namespace, {"metadata": {
        "name": "taken", "labels": {"app": "db"}, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "someone", "uid": other["metadata"]["uid"],
            "controller": True}]},
        "spec": container})
    rs = call(cluster.apps.create_namespaced_replica_set, cluster.namespace, replica_set("db", 2))
    wait_for(lambda: status_is(cluster, "db", replicas=2, readyReplicas=2), what="two ready replicas")
    pods = owned(cluster, rs)
    assert len(pods) == 2 and "orphan" in {p["metadata"]["name"] for p in pods}
    adopted = call(cluster.core.read_namespaced_pod, "orphan", cluster.namespace)
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    assert adopted["metadata"]["uid"] == orphan["metadata"]["uid"]
    taken = call(cluster.core.read_namespaced_pod, "taken", cluster.namespace)
    assert taken["metadata"]["ownerReferences"][0]["uid"] == other["metadata"]["uid"]
    # fullyLabeled counts pods with all the template's labels: the adopted one lacks "extra".
    assert status_is(cluster, "db", fullyLabeledReplicas=1)

    patch(cluster.core.patch_namespaced_pod, "orphan", cluster.namespace,
         {"metadata": {"labels": {"app": "retired"}}})
    wait_for(lambda: not call(cluster.core.read_namespaced_pod, "orphan", cluster.namespace)["metadata"].get(
        "ownerReferences"), what="the relabelled pod released")
    wait_for(lambda: len(owned(cluster, rs)) == 2 and status_is(cluster, "db", replicas=2, readyReplicas=2,
                                                                 fullyLabeledReplicas=2),
             what="a replacement for the released pod")
    assert "orphan" not in {p["metadata"]["name"] for p in owned(cluster, rs)}
    assert call(cluster.core.read_namespaced_pod, "orphan", cluster.namespace)["metadata"]["labels"] == {
        "app": "retired"}
    assert all(is_ready(p) for p in owned(cluster, rs))


def test_stops_promptly(control_plane, cluster: Cluster) -> None:
    """Started and stopped with nothing to do, quickly and without leaving threads."""
    own_client = control_plane.api_client()
    controllers = WorkloadControllers(own_client, namespace=cluster.namespace)
    controllers.start()
    assert controllers.wait_synced(10)
    started = time.monotonic()
    assert controllers.stop()
    assert time.monotonic() - started < 3
    own_client.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(("controller-", "reflector-"))]
