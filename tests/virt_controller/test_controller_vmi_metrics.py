"""virt-controller's VMI metrics against the real API server: kubevirt_vmi_info with
upstream's labels, computed from the VMI and launcher-pod caches at each scrape; the three
VMI phase-transition histograms fed by the informer's updates; nothing of either from a
replica that does not lead; and every replica's leading and ready status."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kube_client.controller import SharedInformer
from kube_client.controller.resource import PODS
from kube_client.controller.store import controller_uid_index
from kube_client.timestamps import format_time
from kubevirt_api import labels
from tests.informers import synced
from tests.wait import eventually
from virt_controller.metrics import register_component_status, register_vmi_metrics
from virt_controller.vmi_controller import VMIS

NS = "default"
VMI = ("kubevirt.io", "v1", NS, "virtualmachineinstances")
HOLD = "tests.kubevirt-py.io/hold"


class _Switches:
    def __init__(self) -> None:
        self.leading = True
        self.ready = True

    def is_leader(self) -> bool:
        return self.leading

    def is_ready(self) -> bool:
        return self.ready


@pytest.fixture(scope="module")
def informers(kubevirt_api) -> Iterator[tuple[SharedInformer, SharedInformer]]:
    vmis = SharedInformer(kubevirt_api, VMIS, name="vmi-metrics-test-vmis")
    pods = SharedInformer(kubevirt_api, PODS, label_selector=f"{labels.APP_LABEL}={labels.VIRT_LAUNCHER}",
                          name="vmi-metrics-test-pods")
    pods.add_indexer("owner", controller_uid_index)
    with synced(vmis, pods):
        yield vmis, pods


@pytest.fixture(scope="module")
def metrics(informers) -> tuple[CollectorRegistry, _Switches]:
    vmis, pods = informers
    registry, switches = CollectorRegistry(), _Switches()
    register_vmi_metrics(registry, vmis, lambda uid: pods.by_index("owner", uid), switches.is_leader)
    register_component_status(registry, switches.is_leader, switches.is_ready)
    return registry, switches


def _custom(api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict, float]]]:
    found: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _value(scraped: dict, metric: str, **wanted: str) -> float:
    return next((v for found, v in scraped.get(metric, []) if all(found.get(k) == x for k, x in wanted.items())), 0.0)


def _create_vmi(api, name: str, **meta) -> dict:
    return _custom(api).create_namespaced_custom_object(*VMI[:3], VMI[3], {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": name, **meta},
        "spec": {"domain": {"devices": {}}, "evictionStrategy": "LiveMigrate"}})


def _status(api, name: str, status: dict) -> dict:
    return _custom(api).patch_namespaced_custom_object_status(*VMI, name, {"status": status})


def _seen(informer: SharedInformer, written: dict) -> bool:
    cached = informer.get(f"{NS}/{written['metadata']['name']}") or {}
    return cached.get("metadata", {}).get("resourceVersion") == written["metadata"]["resourceVersion"]


def _launcher_pod(api, vmi: dict, node: str) -> str:
    """A running launcher pod of the VMI on ``node``; returns its name."""
    core = client.CoreV1Api(api)
    meta = vmi["metadata"]
    pod = core.create_namespaced_pod(NS, {
        "metadata": {"name": f"virt-launcher-{meta['name']}-x1y2z",
                     "labels": {labels.APP_LABEL: labels.VIRT_LAUNCHER, labels.CREATED_BY_LABEL: meta["uid"]},
                     "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                          "name": meta["name"], "uid": meta["uid"], "controller": True}]},
        "spec": {"nodeName": node, "containers": [{"name": "compute", "image": "kubevirt-py/virt-launcher:latest"}]}})
    core.patch_namespaced_pod_status(pod.metadata.name, NS, {"status": {"phase": "Running"}})
    return pod.metadata.name


def test_vmi_info_describes_each_vmi(kubevirt_api, informers, metrics) -> None:
    registry, _ = metrics
    vmis, pods = informers
    name = f"info-{uuid.uuid4().hex[:6]}"
    vmi = _create_vmi(kubevirt_api, name, labels={labels.OUTDATED_LAUNCHER_IMAGE_LABEL: ""}, annotations={
        "vm.kubevirt.io/os": "fedora", "vm.kubevirt.io/workload": "server", "vm.kubevirt.io/flavor": "small",
        labels.CLUSTER_INSTANCETYPE_ANNOTATION: "u1.small"})
    vmi = _status(kubevirt_api, name, {"phase": "Running", "nodeName": "node-a", "machine": {"type": "q35"},
                                       "guestOSInfo": {"kernelRelease": "6.8.0", "machine": "x86_64",
                                                       "name": "Fedora Linux", "versionId": "40"}})
    pod = _launcher_pod(kubevirt_api, vmi, "node-a")
    eventually(lambda: _seen(vmis, vmi) and ((pods.get(f"{NS}/{pod}") or {}).get("status") or {}).get("phase")
               == "Running", what="the caches caught up")

    [(found, value)] = [s for s in _scrape(registry)["kubevirt_vmi_info"] if s[0]["name"] == name]
    assert value == 1
    assert found == {"node": "node-a", "namespace": NS, "name": name, "phase": "running", "os": "fedora",
                     "workload": "server", "flavor": "small", "instance_type": "<other>", "preference": "",
                     "guest_os_kernel_release": "6.8.0", "guest_os_machine": "q35", "guest_os_arch": "x86_64",
                     "guest_os_name": "Fedora Linux", "guest_os_version_id": "40",
                     # LiveMigrate, and not (yet) known to be live-migratable: a drain would be blocked.
                     "evictable": "false", "outdated": "true", "vmi_pod": pod}

    vmi = _status(kubevirt_api, name, {"conditions": [{"type": "LiveMigratable", "status": "True"}]})
    eventually(lambda: _seen(vmis, vmi), what="the informer saw the condition")
    [(found, _)] = [s for s in _scrape(registry)["kubevirt_vmi_info"] if s[0]["name"] == name]
    assert found["evictable"] == "true"

    client.CoreV1Api(kubevirt_api).delete_namespaced_pod(pod, NS)
    _custom(kubevirt_api).delete_namespaced_custom_object(*VMI, name)
    eventually(lambda: vmis.get(f"{NS}/{name}") is None, what="the VMI left the cache")
    assert not [s for s in _scrape(registry).get("kubevirt_vmi_info", []) if s[0]["name"] == name]


def _stamp(at: datetime.datetime, phase: str) -> dict:
    return {"phase": phase, "phaseTransitionTimestamp": format_time(at)}


def test_phase_transitions_between_phases_from_creation_and_from_deletion(kubevirt_api, informers, metrics) -> None:
    registry, _ = metrics
    vmis, _ = informers
    name = f"phases-{uuid.uuid4().hex[:6]}"
    vmi = _create_vmi(kubevirt_api, name, finalizers=[HOLD])
    created = datetime.datetime.fromisoformat(vmi["metadata"]["creationTimestamp"])
    before = _scrape(registry)
    stamps: list[dict] = []
    for phase, after in (("Pending", 1), ("Scheduling", 3), ("Running", 10)):
        stamps.append(_stamp(created + datetime.timedelta(seconds=after), phase))
        vmi = _status(kubevirt_api, name, {"phase": phase, "phaseTransitionTimestamps": stamps})
        eventually(lambda: _seen(vmis, vmi), what=f"the informer saw {phase}")

    vmi = _custom(kubevirt_api).delete_namespaced_custom_object(*VMI, name)  # held by the finalizer
    deleted = datetime.datetime.fromisoformat(vmi["metadata"]["deletionTimestamp"])
    stamps.append(_stamp(deleted + datetime.timedelta(seconds=4), "Succeeded"))
    vmi = _status(kubevirt_api, name, {"phase": "Succeeded", "phaseTransitionTimestamps": stamps})
    eventually(lambda: _seen(vmis, vmi), what="the informer saw Succeeded")
    after = _scrape(registry)

    def grew(metric: str, **wanted: str) -> tuple[float, float]:
        return (_value(after, f"{metric}_count", **wanted) - _value(before, f"{metric}_count", **wanted),
                _value(after, f"{metric}_sum", **wanted) - _value(before, f"{metric}_sum", **wanted))

    between = "kubevirt_vmi_phase_transition_time_seconds"
    assert grew(between, phase="Pending", last_phase="") == (1, 1)
    assert grew(between, phase="Scheduling", last_phase="Pending") == (1, 2)
    assert grew(between, phase="Running", last_phase="Scheduling") == (1, 7)
    assert grew("kubevirt_vmi_phase_transition_time_from_creation_seconds", phase="Running") == (1, 10)
    assert grew("kubevirt_vmi_phase_transition_time_from_deletion_seconds", phase="Succeeded") == (1, 4)
    assert _value(after, f"{between}_bucket", phase="Running", last_phase="Scheduling", le="5.0") == 0
    assert _value(after, f"{between}_bucket", phase="Running", last_phase="Scheduling", le="10.0") >= 1

    _custom(kubevirt_api).patch_namespaced_custom_object(*VMI, name, {"metadata": {"finalizers": None}})
    eventually(lambda: vmis.get(f"{NS}/{name}") is None, what="the VMI left the cache")


def test_a_replica_that_does_not_lead_reports_only_its_status(kubevirt_api, informers, metrics) -> None:
    registry, switches = metrics
    vmis, _ = informers
    name = f"follower-{uuid.uuid4().hex[:6]}"
    vmi = _create_vmi(kubevirt_api, name)
    eventually(lambda: _seen(vmis, vmi), what="the informer saw the VMI")
    scraped = _scrape(registry)
    assert _value(scraped, "kubevirt_virt_controller_leading_status") == 1
    assert _value(scraped, "kubevirt_virt_controller_ready_status") == 1
    assert [s for s in scraped["kubevirt_vmi_info"] if s[0]["name"] == name]
    pending = {"phase": "Pending", "last_phase": ""}
    observed = _value(scraped, "kubevirt_vmi_phase_transition_time_seconds_count", **pending)

    switches.leading, switches.ready = False, False
    try:
        stamps = [_stamp(datetime.datetime.fromisoformat(vmi["metadata"]["creationTimestamp"]), "Pending")]
        vmi = _status(kubevirt_api, name, {"phase": "Pending", "phaseTransitionTimestamps": stamps})
        eventually(lambda: _seen(vmis, vmi), what="the informer saw Pending")
        scraped = _scrape(registry)
        assert "kubevirt_vmi_info" not in scraped
        assert scraped["kubevirt_virt_controller_leading_status"] == [({}, 0)]
        assert scraped["kubevirt_virt_controller_ready_status"] == [({}, 0)]
        # The transition seen meanwhile is left to the leader.
        assert _value(scraped, "kubevirt_vmi_phase_transition_time_seconds_count", **pending) == observed
    finally:
        switches.leading, switches.ready = True, True
    _custom(kubevirt_api).delete_namespaced_custom_object(*VMI, name)
    eventually(lambda: vmis.get(f"{NS}/{name}") is None, what="the VMI left the cache")
