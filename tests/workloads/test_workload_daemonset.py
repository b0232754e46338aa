"""The DaemonSet controller against the local API server, with the real scheduler."""

from __future__ import annotations

import time
from typing import Any

from workload_testkit import patch, Cluster, is_ready, node_of, wait_for

from kube_client.rawapi import call
from local_cluster.workloads.template_hash import template_hash

Obj = dict[str, Any]


def daemon_set(name: str, *, node_selector: dict[str, str] | None = None, image: str = "busybox:1",
               strategy: Obj | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "main", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    body: Obj = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                 "spec": {"selector": {"matchLabels": {"app": name}},
                          "template": {"metadata": {"labels": {"app": name, "tier": "node"}}, "spec": spec}}}
    if strategy:
        body["spec"]["updateStrategy"] = strategy
    return body


def create(cluster: Cluster, body: Obj) -> Obj:
    return call(cluster.apps.create_namespaced_daemon_set, cluster.namespace, body)


def read(cluster: Cluster, name: str) -> Obj:
    return call(cluster.apps.read_namespaced_daemon_set, name, cluster.namespace)


def pods_by_node(cluster: Cluster, app: str) -> dict[str, list[Obj]]:
    placed: dict[str, list[Obj]] = {}
    for pod in cluster.live_pods(f"app={app}"):
        placed.setdefault(node_of(pod), []).append(pod)
    return placed


def settled(cluster: Cluster, app: str, nodes: set[str], **status: int) -> dict[str, list[Obj]] | None:
    """The pods by node once exactly one ready pod runs on each of nodes and the status says so."""
    placed = pods_by_node(cluster, app)
    if set(placed) != nodes or any(len(p) != 1 or not is_ready(p[0]) for p in placed.values()):
        return None
    current = read(cluster, app).get("status") or {}
    return placed if all(current.get(k, 0) == v for k, v in status.items()) else None


def set_image(cluster: Cluster, name: str, image: str) -> None:
    patch(cluster.apps.patch_namespaced_daemon_set, name, cluster.namespace,
         {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}})


def test_one_pod_per_eligible_node(cluster: Cluster, workloads) -> None:
    plain = cluster.node("plain", labels={"disk": "ssd"})
    cordoned = cluster.node("cordoned", labels={"disk": "ssd"}, unschedulable=True)
    cluster.node("tainted", labels={"disk": "ssd"},
                 taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    cluster.node("hdd", labels={"disk": "hdd"})
    not_ready = cluster.node("not-ready", labels={"disk": "ssd"}, ready="False")
    ds = create(cluster, daemon_set("agent", node_selector={"disk": "ssd"}))

    placed = wait_for(lambda: settled(cluster, "agent", {plain, cordoned}, desiredNumberScheduled=2,
                                      currentNumberScheduled=2, numberReady=2, numberAvailable=2,
                                      updatedNumberScheduled=2, numberMisscheduled=0, observedGeneration=1),
                      what="one ready pod on each eligible node")
    pod = placed[plain][0]
    meta = pod["metadata"]
    assert meta["generateName"] == "agent-"
    assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                        "uid": ds["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert meta["labels"] == {"app": "agent", "tier": "node",
                              "controller-revision-hash": template_hash(ds["spec"]["template"]),
                              "pod-template-generation": "1"}
    required = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [plain]}]}]}
    tolerations = pod["spec"]["tolerations"]
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"} in tolerations
    assert {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert cluster.events("SuccessfulCreate")

    # A node that turns Ready is one more node to run on.
    cluster.set_node_ready(not_ready, "True")
    wait_for(lambda: settled(cluster, "agent", {plain, cordoned, not_ready}, desiredNumberScheduled=3,
                             numberAvailable=3), what="a pod on the node that became Ready")


def test_follows_nodes_and_replaces_pods(cluster: Cluster, workloads) -> None:
    first, second = cluster.node("a"), cluster.node("b")
    create(cluster, daemon_set("logs"))
    placed = wait_for(lambda: settled(cluster, "logs", {first, second}, numberAvailable=2), what="two pods")

    third = cluster.node("c")
    wait_for(lambda: settled(cluster, "logs", {first, second, third}, desiredNumberScheduled=3, numberAvailable=3),
             what="a pod on the new node")
    cluster.delete_node(first)
    placed = wait_for(lambda: settled(cluster, "logs", {second, third}, desiredNumberScheduled=2,
                                      currentNumberScheduled=2), what="the removed node's pod gone")

    # A deleted pod is replaced on its node; so is a failed one.
    deleted = placed[second][0]["metadata"]
    call(cluster.core.delete_namespaced_pod, deleted["name"], cluster.namespace)
    failed = placed[third][0]["metadata"]
    cluster.set_phase(failed["name"], "Failed")
    placed = wait_for(lambda: settled(cluster, "logs", {second, third}, numberAvailable=2)
                      if {p[0]["metadata"]["uid"] for p in pods_by_node(cluster, "logs").values()}.isdisjoint(
                          {deleted["uid"], failed["uid"]}) else None, what="both pods replaced")
    assert {p[0]["metadata"]["name"] for p in placed.values()}.isdisjoint({deleted["name"], failed["name"]})

    # NoSchedule keeps a pod already there; NoExecute evicts it.
    cluster.set_node_taints(second, [{"key": "maintenance", "effect": "NoSchedule"}])
    wait_for(lambda: settled(cluster, "logs", {second, third}, desiredNumberScheduled=1, numberMisscheduled=1),
             what="the pod kept on a NoSchedule node, counted as misscheduled")
    cluster.set_node_taints(second, [{"key": "maintenance", "effect": "NoExecute"}])
    wait_for(lambda: settled(cluster, "logs", {third}, desiredNumberScheduled=1, numberMisscheduled=0),
             what="the pod evicted from a NoExecute node")


def test_rolling_update_replaces_one_node_at_a_time(cluster: Cluster, workloads) -> None:
    nodes = {cluster.node(n) for n in ("a", "b", "c")}
    create(cluster, daemon_set("proxy"))
    before = wait_for(lambda: settled(cluster, "proxy", nodes, numberAvailable=3), what="three pods")
    old_uids = {p[0]["metadata"]["uid"] for p in before.values()}

    set_image(cluster, "proxy", "busybox:2")
    new_hash = template_hash(read(cluster, "proxy")["spec"]["template"])
    worst = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        placed = pods_by_node(cluster, "proxy")
        serving = sum(1 for n in nodes if any(is_ready(p) for p in placed.get(n, [])))
        worst = max(worst, len(nodes) - serving)
        if settled(cluster, "proxy", nodes, updatedNumberScheduled=3, numberAvailable=3, observedGeneration=2):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the rolling update did not finish")
    assert worst <= 1, f"{worst} nodes were without a ready daemon pod at once (maxUnavailable is 1)"
    after = pods_by_node(cluster, "proxy")
    assert all(p[0]["metadata"]["labels"]["controller-revision-hash"] == new_hash for p in after.values())
    assert all(p[0]["metadata"]["labels"]["pod-template-generation"] == "2" for p in after.values())
    assert all(p[0]["spec"]["containers"][0]["image"] == "busybox:2" for p in after.values())
    assert old_uids.isdisjoint(p[0]["metadata"]["uid"] for p in after.values())
    assert len(cluster.pods("app=proxy")) == 3


def test_on_delete_waits_for_pods_to_be_deleted(cluster: Cluster, workloads) -> None:
    nodes = {cluster.node("a"), cluster.node("b")}
    create(cluster, daemon_set("manual", strategy={"type": "OnDelete"}))
    wait_for(lambda: settled(cluster, "manual", nodes, numberAvailable=2), what="two pods")
    set_image(cluster, "manual", "busybox:2")
    wait_for(lambda: settled(cluster, "manual", nodes, observedGeneration=2, updatedNumberScheduled=0),
             what="the new generation observed")
    time.sleep(0.5)
    placed = pods_by_node(cluster, "manual")
    assert all(p[0]["spec"]["containers"][0]["image"] == "busybox:1" for p in placed.values())

    victim = sorted(placed)[0]
    call(cluster.core.delete_namespaced_pod, placed[victim][0]["metadata"]["name"], cluster.namespace)
    placed = wait_for(lambda: settled(cluster, "manual", nodes, updatedNumberScheduled=1, numberAvailable=2),
                      what="the deleted pod replaced from the new template")
    assert placed[victim][0]["spec"]["containers"][0]["image"] == "busybox:2"
