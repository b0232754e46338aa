"""The VMI controller against the real API server and scheduler: one launcher pod per
VMI, phases up to Scheduled, Failed when the pod fails, pods removed with the VMI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from local_cluster.scheduler import Scheduler
from tests.wait import eventually
from virt_controller.vmi_controller import VMIController



@pytest.fixture(scope="module")
def cluster(control_plane, kubevirt_api) -> Iterator[client.ApiClient]:
    api = kubevirt_api
    core = client.CoreV1Api(api)
    core.create_node({"metadata": {"name": "vmnode", "labels": {"kubevirt.io/schedulable": "true"}}})
    core.patch_node_status("vmnode", {"status": {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}, "capacity": {"cpu": "4", "memory": "8Gi"},
        "conditions": [{"type": "Ready", "status": "True"}]}})
    scheduler = Scheduler(control_plane.api_client())
    controller = VMIController(control_plane.api_client())
    scheduler.start()
    controller.start()
    yield api
    controller.stop()
    scheduler.stop()


def _vmi(name: str, **spec) -> dict:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": name},
            "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "128Mi"}}}, **spec}}


def _get(api, name: str) -> dict:
    return client.CustomObjectsApi(api).get_namespaced_custom_object("kubevirt.io", "v1", "default",
                                                                   "virtualmachineinstances", name)


def _pods(api, vmi: dict) -> list:
    return client.CoreV1Api(api).list_namespaced_pod(
        "default", label_selector=f"kubevirt.io/created-by={vmi['metadata']['uid']}").items


def _create(api, body: dict) -> dict:
    return client.CustomObjectsApi(api).create_namespaced_custom_object("kubevirt.io", "v1", "default",
                                                                      "virtualmachineinstances", body)


def test_vmi_gets_one_pod_and_reaches_scheduled(cluster) -> None:
    vmi = _create(cluster, _vmi(f"a-{uuid.uuid4().hex[:6]}"))
    pod = eventually(lambda: (lambda pods: pods[0] if len(pods) == 1 else None)(_pods(cluster, vmi)))
    assert pod.metadata.owner_references[0].uid == vmi["metadata"]["uid"]
    eventually(lambda: client.CoreV1Api(cluster).read_namespaced_pod(pod.metadata.name, "default").spec.node_name)
    client.CoreV1Api(cluster).patch_namespaced_pod_status(pod.metadata.name, "default", {"status": {
        "phase": "Running", "podIP": "127.9.0.2", "conditions": [{"type": "Ready", "status": "True"}]}})
    scheduled = eventually(lambda: (lambda v: v if v.get("status", {}).get("phase") == "Scheduled" else None)(
        _get(cluster, vmi["metadata"]["name"])))
    assert scheduled["status"]["nodeName"] == "vmnode"
    assert scheduled["metadata"]["labels"]["kubevirt.io/nodeName"] == "vmnode"
    phases = [t["phase"] for t in scheduled["status"]["phaseTransitionTimestamps"]]
    assert phases[0] == "Pending" and phases[-1] == "Scheduled"
    assert len(_pods(cluster, vmi)) == 1  # expectations: never a second pod


def test_pod_failure_fails_the_vmi(cluster) -> None:
    vmi = _create(cluster, _vmi(f"b-{uuid.uuid4().hex[:6]}"))
    pod = eventually(lambda: (_pods(cluster, vmi) or [None])[0])
    client.CoreV1Api(cluster).patch_namespaced_pod_status(pod.metadata.name, "default",
                                                          {"status": {"phase": "Failed"}})
    failed = eventually(lambda: (lambda v: v if v.get("status", {}).get("phase") == "Failed" else None)(
        _get(cluster, vmi["metadata"]["name"])))
    assert failed["status"]["reason"] == "PodTerminated"


def test_unschedulable_vmi_reports_why(cluster) -> None:
    vmi = _create(cluster, _vmi(f"c-{uuid.uuid4().hex[:6]}", nodeSelector={"gpu": "yes"}))

    def scheduling_condition() -> dict | None:
        status = _get(cluster, vmi["metadata"]["name"]).get("status", {})
        return next((c for c in status.get("conditions") or [] if c["type"] == "PodScheduled"), None) \
            if status.get("phase") == "Scheduling" else None

    condition = eventually(scheduling_condition)
    assert condition["status"] == "False" and condition["reason"] == "Unschedulable"


def test_deleting_the_vmi_removes_its_pod(cluster) -> None:
    vmi = _create(cluster, _vmi(f"d-{uuid.uuid4().hex[:6]}"))
    eventually(lambda: _pods(cluster, vmi))
    client.CustomObjectsApi(cluster).delete_namespaced_custom_object("kubevirt.io", "v1", "default",
                                                                     "virtualmachineinstances",
                                                                     vmi["metadata"]["name"])
    # Bound to a node without a kubelet here, the pod is deleted gracefully: it is marked
    # for deletion and would go once its kubelet confirms.
    pods = eventually(lambda: (lambda found: found if found and all(p.metadata.deletion_timestamp for p in found)
                               else None)(_pods(cluster, vmi)), timeout=20)
    # The VMI waits for its pod (the guest) to be gone: upstream's finalizer.
    held = _get(cluster, vmi["metadata"]["name"])
    assert held["metadata"]["deletionTimestamp"] and "foregroundDeleteVirtualMachine" in held["metadata"]["finalizers"]
    for pod in pods:  # what the kubelet would do once the launcher has exited
        client.CoreV1Api(cluster).delete_namespaced_pod(pod.metadata.name, "default", grace_period_seconds=0)
    eventually(lambda: not _exists(cluster, vmi["metadata"]["name"]), timeout=20)


def _exists(api, name: str) -> bool:
    try:
        _get(api, name)
        return True
    except client.ApiException as error:
        assert error.status == 404
        return False


def test_a_missing_claim_holds_the_pod_back_until_it_exists(cluster) -> None:
    claim = f"data-{uuid.uuid4().hex[:6]}"
    vmi = _create(cluster, _vmi(f"e-{uuid.uuid4().hex[:6]}", volumes=[
        {"name": "data", "persistentVolumeClaim": {"claimName": claim}}]))
    name = vmi["metadata"]["name"]

    def waiting_condition() -> dict | None:
        conditions = _get(cluster, name).get("status", {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Synchronized" and c["status"] == "False"), None)

    condition = eventually(waiting_condition)
    assert condition["reason"] == "FailedPvcNotFound" and f"PVC default/{claim} does not exist" in condition["message"]
    assert not _pods(cluster, vmi)
    client.CoreV1Api(cluster).create_namespaced_persistent_volume_claim("default", {
        "metadata": {"name": claim}, "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                                              "resources": {"requests": {"storage": "1Gi"}}}})
    pod = eventually(lambda: (_pods(cluster, vmi) or [None])[0], timeout=15)
    assert pod.spec.containers[0].volume_devices[0].device_path == "/dev/data"
    info = _get(cluster, name)["status"]["volumeStatus"][0]["persistentVolumeClaimInfo"]
    assert info["claimName"] == claim and info["accessModes"] == ["ReadWriteMany"] and info["volumeMode"] == "Block"
    assert waiting_condition() is None
