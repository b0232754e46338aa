"""The Deployment controller against the local API server, with the real scheduler."""

from __future__ import annotations

import time
from typing import Any

from workload_testkit import patch, Cluster, is_ready, wait_for

from kube_client.rawapi import call
from local_cluster.workloads.template_hash import template_hash

Obj = dict[str, Any]


def deployment(name: str, replicas: int, *, strategy: Obj | None = None, image: str = "busybox:1",
               history: int | None = None) -> Obj:
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image}]}}}
    if strategy:
        spec["strategy"] = strategy
    if history is not None:
        spec["revisionHistoryLimit"] = history
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def read(cluster: Cluster, name: str) -> Obj:
    return call(cluster.apps.read_namespaced_deployment, name, cluster.namespace)


def sets(cluster: Cluster) -> list[Obj]:
    return call(cluster.apps.list_namespaced_replica_set, cluster.namespace).get("items") or []


def set_image(cluster: Cluster, name: str, image: str) -> None:
    patch(cluster.apps.patch_namespaced_deployment, name, cluster.namespace,
         {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}})


def condition(obj: Obj, kind: str) -> Obj:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def rolled_out(cluster: Cluster, name: str, replicas: int) -> Obj | None:
    """The deployment once its rollout is complete (as `kubectl rollout status` judges it)."""
    d = read(cluster, name)
    status = d.get("status") or {}
    done = (status.get("observedGeneration") == d["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
            and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable")
    return d if done else None


def pod_hashes(cluster: Cluster, name: str) -> list[str]:
    return [p["metadata"]["labels"].get("pod-template-hash", "") for p in cluster.pods(f"app={name}")]


def test_creates_a_replica_set_named_by_the_template_hash(cluster: Cluster, workloads) -> None:
    cluster.node("a")
    cluster.node("b")
    created = call(cluster.apps.create_namespaced_deployment, cluster.namespace, deployment("api", 3))
    d = wait_for(lambda: rolled_out(cluster, "api", 3), what="the rollout to complete")
    hash_value = template_hash(created["spec"]["template"])
    [rs] = sets(cluster)
    assert rs["metadata"]["name"] == f"api-{hash_value}"
    assert rs["metadata"]["labels"] == {"app": "api", "pod-template-hash": hash_value}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "api", "pod-template-hash": hash_value}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "api", "pod-template-hash": hash_value}
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api",
                                                  "uid": created["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    status = d["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"],
            status.get("unavailableReplicas", 0), status["observedGeneration"]) == (3, 3, 3, 3, 0, 1)
    available = condition(d, "Available")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    progressing = condition(d, "Progressing")
    assert progressing["status"] == "True"
    assert progressing["message"] == f'ReplicaSet "api-{hash_value}" has successfully progressed.'
    assert sorted(pod_hashes(cluster, "api")) == [hash_value] * 3
    assert any(e["message"] == f"Scaled up replica set api-{hash_value} from 0 to 3"
               for e in cluster.events("ScalingReplicaSet"))


def test_rolling_update_moves_every_pod_to_the_new_set(cluster: Cluster, workloads) -> None:
    cluster.node("a")
    cluster.node("b")
    # 4 replicas with the 25% defaults: at most 5 pods wanted, at least 3 available.
    call(cluster.apps.create_namespaced_deployment, cluster.namespace, deployment("web", 4))
    wait_for(lambda: rolled_out(cluster, "web", 4), what="the first rollout")
    [old] = sets(cluster)

    set_image(cluster, "web", "busybox:2")
    most_wanted, fewest_ready = 0, 4
    deadline = time.monotonic() + 20
    while (d := rolled_out(cluster, "web", 4)) is None:
        assert time.monotonic() < deadline, "the rolling update did not finish"
        most_wanted = max(most_wanted, sum(rs["spec"]["replicas"] for rs in sets(cluster)))
        ready = [p for p in cluster.live_pods("app=web") if is_ready(p)]
        fewest_ready = min(fewest_ready, len(ready))
        time.sleep(0.02)
    assert most_wanted <= 5, f"the sets asked for {most_wanted} pods (maxSurge allows 5)"
    assert fewest_ready >= 3, f"only {fewest_ready} pods were ready at one point (maxUnavailable allows 3)"

    by_name = {rs["metadata"]["name"]: rs for rs in sets(cluster)}
    new_name = f"web-{template_hash(d['spec']['template'])}"
    assert set(by_name) == {old["metadata"]["name"], new_name}
    assert by_name[old["metadata"]["name"]]["spec"]["replicas"] == 0
    assert by_name[new_name]["spec"]["replicas"] == 4
    assert by_name[new_name]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    wait_for(lambda: pod_hashes(cluster, "web") == [new_name.rsplit("-", 1)[1]] * 4, what="only new pods left")
    assert d["status"]["observedGeneration"] == 2 and d["status"]["updatedReplicas"] == 4


def test_recreate_removes_every_old_pod_before_making_new_ones(cluster: Cluster, workloads) -> None:
    cluster.node("a")
    call(cluster.apps.create_namespaced_deployment, cluster.namespace,
         deployment("batch", 2, strategy={"type": "Recreate"}))
    wait_for(lambda: rolled_out(cluster, "batch", 2), what="the first rollout")
    [old] = sets(cluster)
    old_hash = old["metadata"]["labels"]["pod-template-hash"]

    set_image(cluster, "batch", "busybox:2")
    deadline = time.monotonic() + 20
    while rolled_out(cluster, "batch", 2) is None:
        assert time.monotonic() < deadline, "the recreate rollout did not finish"
        hashes = set(pod_hashes(cluster, "batch"))  # pods being deleted included
        assert not (old_hash in hashes and len(hashes) > 1), "old and new pods existed at the same time"
        time.sleep(0.02)
    assert set(pod_hashes(cluster, "batch")) - {old_hash}
    assert {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in sets(cluster)}[old["metadata"]["name"]] == 0


def test_scaling_history_limit_and_garbage_collection(cluster: Cluster, workloads) -> None:
    cluster.node("a")
    call(cluster.apps.create_namespaced_deployment, cluster.namespace, deployment("svc", 2, history=1))
    wait_for(lambda: rolled_out(cluster, "svc", 2), what="the first rollout")
    for image in ("busybox:2", "busybox:3"):
        set_image(cluster, "svc", image)
        wait_for(lambda: rolled_out(cluster, "svc", 2), what=f"the rollout of {image}")
    # Three revisions were made; one old one is kept besides the current one.
    wait_for(lambda: len(sets(cluster)) == 2, what="the oldest set deleted")
    revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in sets(cluster))
    assert revisions == ["2", "3"]

    patch(cluster.apps.patch_namespaced_deployment_scale, "svc", cluster.namespace, {"spec": {"replicas": 3}})
    wait_for(lambda: rolled_out(cluster, "svc", 3), what="the scale-up")
    assert len(cluster.live_pods("app=svc")) == 3
    assert call(cluster.apps.read_namespaced_deployment_scale, "svc", cluster.namespace)["status"]["replicas"] == 3

    call(cluster.apps.delete_namespaced_deployment, "svc", cluster.namespace)
    wait_for(lambda: not sets(cluster) and not cluster.pods("app=svc"), what="the sets and pods collected")


def sizes(cluster: Cluster) -> dict[str, int]:
    return {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in sets(cluster)}


def test_scaling_mid_rollout_is_proportional_and_pausing_holds_the_rollout(cluster: Cluster, kubelet,
                                                                           workloads) -> None:
    cluster.node("a")
    call(cluster.apps.create_namespaced_deployment, cluster.namespace, deployment("mid", 4))
    wait_for(lambda: rolled_out(cluster, "mid", 4), what="the first rollout")
    [old] = sets(cluster)
    old_name = old["metadata"]["name"]

    # New pods never get ready: the rollout stalls at 3 old + 2 new (surge 1, unavailable 1).
    kubelet.running.clear()
    set_image(cluster, "mid", "busybox:2")
    new_name = f"mid-{template_hash(read(cluster, 'mid')['spec']['template'])}"
    wait_for(lambda: sizes(cluster) == {old_name: 3, new_name: 2}, what="the stalled rollout")
    time.sleep(0.3)
    assert sizes(cluster) == {old_name: 3, new_name: 2}

    # 4 -> 8 replicas (surge 2): the 5 extra pods allowed are split 3:2, like the sets.
    patch(cluster.apps.patch_namespaced_deployment_scale, "mid", cluster.namespace, {"spec": {"replicas": 8}})
    wait_for(lambda: sizes(cluster) == {old_name: 6, new_name: 4}, what="proportional scaling")
    kubelet.running.set()
    wait_for(lambda: rolled_out(cluster, "mid", 8), what="the rollout to finish at 8")
    assert sizes(cluster) == {old_name: 0, new_name: 8}

    # Paused: a template change waits; resumed: it rolls out.
    patch(cluster.apps.patch_namespaced_deployment, "mid", cluster.namespace, {"spec": {"paused": True}})
    wait_for(lambda: condition(read(cluster, "mid"), "Progressing").get("reason") == "DeploymentPaused",
             what="the paused condition")
    set_image(cluster, "mid", "busybox:3")
    time.sleep(0.5)
    assert len(sets(cluster)) == 2
    patch(cluster.apps.patch_namespaced_deployment, "mid", cluster.namespace, {"spec": {"paused": False}})
    wait_for(lambda: len(sets(cluster)) == 3 and rolled_out(cluster, "mid", 8), what="the rollout after resuming")
