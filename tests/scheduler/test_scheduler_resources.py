"""Resource requests against node allocatable: bound pods count, and pods wait for room."""

from __future__ import annotations

from scheduler_testkit import Cluster

from kube_client.rawapi import MERGE_PATCH, call

KVM = "devices.kubevirt.io/kvm"


def test_too_big_pod_waits_for_a_bigger_node(cluster: Cluster, scheduler) -> None:
    cluster.node("small", memory="1Gi", labels={"pool": "x"})
    cluster.node("elsewhere", memory="16Gi", labels={"pool": "y"})
    pools = {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["x", "z"]}]}
    cluster.pod("big", memory="4Gi", spec={"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [pools]}}}})
    message = "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector."
    cluster.wait_unschedulable("big", message)
    bigger = cluster.node("bigger", memory="8Gi", labels={"pool": "z"})
    assert cluster.wait_bound("big") == bigger


def test_least_allocated_node_is_preferred(cluster: Cluster, scheduler) -> None:
    cluster.node("a", memory="8Gi")
    cluster.node("b", memory="8Gi")
    first = cluster.wait_bound(cluster.pod("first", memory="4Gi"))
    second = cluster.wait_bound(cluster.pod("second", memory="4Gi"))
    assert first != second


def test_requests_of_bound_pods_are_counted(cluster: Cluster, scheduler) -> None:
    kvm = cluster.node("kvm", cpu="2", memory="2Gi", pods="3", labels={"role": "kvm"}, extra={KVM: "1"})
    cluster.node("plain", cpu="8", memory="8Gi", labels={"role": "plain"})
    on_kvm = {"nodeSelector": {"role": "kvm"}}

    assert cluster.wait_bound(cluster.pod("vm-1", extra_requests={KVM: "1"})) == kvm
    cluster.pod("vm-2", extra_requests={KVM: "1"})
    cluster.wait_unschedulable("vm-2", f"0/2 nodes are available: 2 Insufficient {KVM}.")

    # Needs the larger of its init container (1500Mi) and container (100Mi), plus the
    # pod overhead (100Mi): 1600Mi of the node's 2Gi.
    init_heavy = {**on_kvm, "overhead": {"memory": "100Mi"}, "initContainers": [
        {"name": "prepare", "image": "busybox", "resources": {"requests": {"memory": "1500Mi"}}}]}
    assert cluster.wait_bound(cluster.pod("init-heavy", memory="100Mi", spec=init_heavy)) == kvm
    # A limit without a request counts as the request: 600Mi does not fit in the 448Mi left.
    limits_only = {**on_kvm, "containers": [
        {"name": "main", "image": "busybox", "resources": {"limits": {"memory": "600Mi"}}}]}
    cluster.pod("limits-only", spec=limits_only)
    cluster.wait_unschedulable("limits-only", "0/2 nodes are available: 1 Insufficient memory, "
                                              "1 node(s) didn't match Pod's node affinity/selector.")

    assert cluster.wait_bound(cluster.pod("tiny", spec=on_kvm)) == kvm
    cluster.pod("one-too-many", spec=on_kvm)
    cluster.wait_unschedulable("one-too-many", "0/2 nodes are available: 1 Too many pods, "
                                               "1 node(s) didn't match Pod's node affinity/selector.")
    call(cluster.core.delete_namespaced_pod, "one-too-many", cluster.namespace, grace_period_seconds=0)

    # A finished pod holds nothing: vm-1 succeeding frees the kvm device for vm-2.
    call(cluster.core.patch_namespaced_pod_status, "vm-1", cluster.namespace,
         {"status": {"phase": "Succeeded"}}, _content_type=MERGE_PATCH)
    assert cluster.wait_bound("vm-2") == kvm
    assert cluster.node_of("limits-only") == ""
