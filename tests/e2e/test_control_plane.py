"""The control plane at work with hypervisor-free guests (libvirt's test driver): replica
sets scaling, and virt-controller failing over between its two replicas."""

from __future__ import annotations

from kubernetes import client

from kubevirt_api import labels
from local_cluster.kubevirt_readiness import CONTROLLER_LEASE, NAMESPACE, controller_leader
from tests.e2e.cluster import Kubevirt, vm_manifest
from tests.wait import eventually

RS = "web"
RS_PLURAL = "virtualmachineinstancereplicasets"


def _replica_set(replicas: int) -> dict:
    template = vm_manifest(RS, "Always", test_driver=True)["spec"]["template"]
    template["metadata"]["labels"] = {"app": RS}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet",
            "metadata": {"name": RS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": RS}}, "template": template}}


def _vmis(kubevirt: Kubevirt) -> list[dict]:
    return kubevirt.custom.list_namespaced_custom_object("kubevirt.io", "v1", "default", "virtualmachineinstances",
                                                         label_selector=f"app={RS}")["items"]


def _running(kubevirt: Kubevirt, count: int) -> bool:
    vmis = _vmis(kubevirt)
    live = [v for v in vmis if not v["metadata"].get("deletionTimestamp")]
    return len(live) == count and all((v.get("status") or {}).get("phase") == "Running" for v in live)


def _launcher_pod_count(kubevirt: Kubevirt) -> int:
    pods = kubevirt.core.list_namespaced_pod("default", label_selector=f"{labels.APP_LABEL}=virt-launcher").items
    return sum(1 for p in pods if (p.metadata.labels or {}).get("app") == RS)


def test_replica_set_scales_3_to_5_to_1(kubevirt: Kubevirt) -> None:
    kubevirt.create(RS_PLURAL, _replica_set(3))
    eventually(lambda: _running(kubevirt, 3), timeout=90, what="3 VMIs Running", interval=0.3)
    kubevirt.patch(RS_PLURAL, RS, {"spec": {"replicas": 5}})
    eventually(lambda: _running(kubevirt, 5), timeout=90, what="5 VMIs Running", interval=0.3)
    eventually(lambda: (kubevirt.get(RS_PLURAL, RS).get("status") or {}).get("readyReplicas") == 5, timeout=30,
               what="status.readyReplicas 5")
    scale = kubevirt.custom.get_namespaced_custom_object_scale("kubevirt.io", "v1", "default", RS_PLURAL, RS)
    assert scale["status"]["replicas"] == 5
    kubevirt.patch(RS_PLURAL, RS, {"spec": {"replicas": 1}})
    eventually(lambda: len(_vmis(kubevirt)) == 1 and _running(kubevirt, 1), timeout=90, what="1 VMI left",
               interval=0.3)
    eventually(lambda: _launcher_pod_count(kubevirt) == 1, timeout=60, what="launcher pods of removed VMIs gone")
    kubevirt.delete(RS_PLURAL, RS)
    eventually(lambda: not _vmis(kubevirt), timeout=60, what="replica set's VMIs removed")


def test_the_other_controller_replica_takes_over(kubevirt: Kubevirt) -> None:
    leader = eventually(lambda: controller_leader(kubevirt.api), timeout=30, what="a leader")
    replicas = [p.metadata.name for p in kubevirt.core.list_namespaced_pod(
        NAMESPACE, label_selector="kubevirt.io=virt-controller").items]
    assert leader in replicas and len(replicas) == 2
    kubevirt.core.delete_namespaced_pod(leader, NAMESPACE)
    successor = eventually(lambda: (holder := controller_leader(kubevirt.api)) not in (None, leader) and holder,
                           timeout=60, what="a new leader", interval=0.3)
    # The surviving replica, or the Deployment's replacement pod if it was quicker.
    current = [p.metadata.name for p in kubevirt.core.list_namespaced_pod(
        NAMESPACE, label_selector="kubevirt.io=virt-controller").items]
    assert successor in current and successor != leader
    kubevirt.create("virtualmachines", vm_manifest("after-failover", "Always", test_driver=True))
    eventually(lambda: kubevirt.running_vmi("after-failover"), timeout=60, what="VMI Running under the new leader",
               interval=0.3)
    lease = client.CoordinationV1Api(kubevirt.api).read_namespaced_lease(CONTROLLER_LEASE, NAMESPACE)
    assert lease.spec.holder_identity == successor
    kubevirt.delete("virtualmachines", "after-failover")
    eventually(lambda: kubevirt.vmi("after-failover") is None, timeout=60, what="VMI removed")
