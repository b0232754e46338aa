"""The scheduler against the local API server: where pods go, and why some cannot."""

from __future__ import annotations

import time

from scheduler_testkit import Cluster

from tests.wait import eventually as wait_for

from kube_client.recorder import EventRecorder


def _affinity(*terms: dict, preferred: list | None = None) -> dict:
    node_affinity: dict = {}
    if terms:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": list(terms)}
    if preferred:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"affinity": {"nodeAffinity": node_affinity}}


def test_node_selector_and_scheduled_event(cluster: Cluster, scheduler) -> None:
    ssd = cluster.node("ssd", labels={"disk": "ssd"})
    cluster.node("hdd", labels={"disk": "hdd"})
    cluster.pod("wants-ssd", spec={"nodeSelector": {"disk": "ssd"}})
    assert cluster.wait_bound("wants-ssd") == ssd
    assert cluster.scheduled_condition("wants-ssd").get("status") == "True"
    scheduled = wait_for(lambda: [e for e in cluster.events("wants-ssd") if e.get("reason") == "Scheduled"],
                         what="a Scheduled event")
    assert scheduled[0]["type"] == "Normal"
    assert scheduled[0]["message"] == f"Successfully assigned {cluster.namespace}/wants-ssd to {ssd}"
    assert scheduled[0]["source"]["component"] == "default-scheduler"


def test_other_schedulers_pods_are_left_alone(cluster: Cluster, scheduler) -> None:
    cluster.node("any")
    cluster.pod("mine")
    cluster.pod("theirs", spec={"schedulerName": "someone-else"})
    cluster.wait_bound("mine")
    time.sleep(0.5)
    assert cluster.node_of("theirs") == ""


def test_required_and_preferred_node_affinity(cluster: Cluster, scheduler) -> None:
    a = cluster.node("a", labels={"zone": "z1", "gen": "3"})
    b = cluster.node("b", labels={"zone": "z2", "gen": "5"})
    c = cluster.node("c", labels={"zone": "z3", "gen": "9"})
    zone_and_gen = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2", "z3"]},
                                         {"key": "gen", "operator": "Lt", "values": ["6"]}]}
    cluster.pod("in-and-lt", spec=_affinity(zone_and_gen))
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [c]}]}
    never = {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}
    cluster.pod("by-name-or-never", spec=_affinity(never, by_name))
    not_in_gt = {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z3"]},
                                      {"key": "gen", "operator": "Gt", "values": ["4"]}]}
    cluster.pod("notin-gt", spec=_affinity(not_in_gt))
    cluster.pod("preferred", spec=_affinity(preferred=[
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z3"]}]}},
        {"weight": 60, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"},
                                                           {"key": "gen", "operator": "Lt", "values": ["4"]}]}}]))
    cluster.pod("nowhere", spec=_affinity(never))
    assert cluster.wait_bound("in-and-lt") == b
    assert cluster.wait_bound("by-name-or-never") == c
    assert cluster.wait_bound("notin-gt") == b
    assert cluster.wait_bound("preferred") == a
    condition = cluster.wait_unschedulable(
        "nowhere", "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
    assert condition["status"] == "False"


def test_taints_tolerations_and_cordoned_node(cluster: Cluster, scheduler) -> None:
    tainted = cluster.node("tainted", taints=[{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}])
    cordoned = cluster.node("cordoned", unschedulable=True,
                            taints=[{"key": "soft", "value": "x", "effect": "PreferNoSchedule"}])
    cluster.node("not-ready", ready="False")
    cluster.pod("plain")
    message = ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: infra}, "
               "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable.")
    cluster.wait_unschedulable("plain", message)
    warnings = wait_for(lambda: [e for e in cluster.events("plain")
                                 if e.get("reason") == "FailedScheduling" and e.get("message") == message],
                        what="a FailedScheduling event")
    # Retries with the same outcome count up on one event instead of adding more.
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"

    cluster.pod("tolerates-infra", spec={"tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]})
    assert cluster.wait_bound("tolerates-infra") == tainted
    cluster.pod("wrong-value", spec={"tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]})
    cluster.pod("tolerates-cordon", spec={"tolerations": [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]})
    assert cluster.wait_bound("tolerates-cordon") == cordoned
    cluster.pod("tolerates-everything", spec={"tolerations": [{"operator": "Exists"}]})
    cluster.wait_bound("tolerates-everything")
    cluster.wait_unschedulable("wrong-value", "0/3 nodes are available: 1 node(s) had untolerated taint "
                                              "{dedicated: infra}, 1 node(s) had untolerated taint "
                                              "{node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable.")

    # Uncordoning is a node change: the waiting pods are tried again without a restart.
    cluster.set_unschedulable(cordoned, False)
    assert cluster.wait_bound("plain") == cordoned
    assert cluster.wait_bound("wrong-value") == cordoned

    def plainly_scheduled() -> bool:
        # Bound, the condition says only True: no leftover Unschedulable reason or message.
        condition = cluster.scheduled_condition("plain")
        return condition.get("status") == "True" and not {"reason", "message"} & set(condition)

    wait_for(plainly_scheduled, what="PodScheduled=True without the old reason")


def test_anti_affinity_spreads_and_leaves_the_third_pending(cluster: Cluster, scheduler) -> None:
    first, second = cluster.node("one"), cluster.node("two")
    spread = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}}
    for name in ("web-1", "web-2", "web-3"):
        cluster.pod(name, labels={"app": "web"}, spec=spread)

    def two_bound() -> dict[str, str]:
        placed = {name: cluster.node_of(name) for name in ("web-1", "web-2", "web-3")}
        return placed if len([node for node in placed.values() if node]) == 2 else {}

    placed = wait_for(two_bound, what="two web pods to be bound")
    assert sorted(node for node in placed.values() if node) == sorted([first, second])
    pending = next(name for name, node in placed.items() if not node)
    message = "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."
    assert cluster.wait_unschedulable(pending, message)["status"] == "False"
    assert wait_for(lambda: [e for e in cluster.events(pending)
                             if e.get("reason") == "FailedScheduling" and e.get("message") == message],
                    what="a FailedScheduling event")
    time.sleep(0.3)
    assert cluster.node_of(pending) == ""

    # A pod that must share a node with a web pod goes to one of theirs; one that
    # needs a db pod (there is none, and it is none itself) waits.
    together = {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
         "topologyKey": "kubernetes.io/hostname"}]}}}
    cluster.pod("sidecar", spec=together)
    assert cluster.wait_bound("sidecar") in (first, second)
    with_db = {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}}
    cluster.pod("needs-db", spec=with_db)
    cluster.wait_unschedulable("needs-db", "0/2 nodes are available: 2 node(s) didn't match pod affinity rules.")
    # The first pod of a group that wants its own kind has no one to join: it may go anywhere.
    cluster.pod("db-1", labels={"app": "db"}, spec=with_db)
    cluster.wait_bound("db-1")
    # ...and then the waiting pod can follow it.
    assert cluster.wait_bound("needs-db") == cluster.node_of("db-1")

    # Deleting a web pod frees its node for the pending one.
    victim = next(name for name, node in placed.items() if node)
    cluster.core.delete_namespaced_pod(victim, cluster.namespace, grace_period_seconds=0)
    assert cluster.wait_bound(pending) == placed[victim]


def test_repeated_events_are_counted_on_one_event(control_plane, cluster: Cluster) -> None:
    api_client = control_plane.api_client()
    try:
        recorder = EventRecorder(api_client, "default-scheduler")
        pod = cluster.get_pod(cluster.pod("noisy"))
        for _ in range(3):
            recorder.record("Pod", pod, "Warning", "FailedScheduling", "same words")
        recorder.record("Pod", pod, "Warning", "FailedScheduling", "other words")
    finally:
        api_client.close()
    events = sorted(cluster.events("noisy"), key=lambda e: e["message"])
    assert [(e["message"], e["count"]) for e in events] == [("other words", 1), ("same words", 3)]
    assert events[1]["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert events[1]["involvedObject"]["kind"] == "Pod"
