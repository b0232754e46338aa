"""A node whose virt-handler stops beating: its VMIs go Failed and a VM that must run
starts again on the other node; the node takes guests again once its handler is back.

Its own cluster: the heartbeat interval and timeout are shortened (from 30 s and 5 min)
by rolling out new arguments, which the other tests should not have to live with."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, watch

from kubevirt_api import labels
from local_cluster.kubevirt_readiness import NAMESPACE, missing_components, schedulable_nodes
from tests.e2e.cluster import Kubevirt, local_kubevirt, vm_manifest
from tests.wait import eventually

HEARTBEAT_INTERVAL = "2"
HEARTBEAT_TIMEOUT = "10"


def _with_args(api: client.ApiClient, kind: str, name: str, extra: list[str]) -> None:
    apps = client.AppsV1Api(api)
    read, patch = ((apps.read_namespaced_deployment, apps.patch_namespaced_deployment) if kind == "Deployment"
                   else (apps.read_namespaced_daemon_set, apps.patch_namespaced_daemon_set))
    container = read(name, NAMESPACE).spec.template.spec.containers[0]
    patch(name, NAMESPACE, {"spec": {"template": {"spec": {"containers": [
        {"name": container.name, "args": [*(container.args or []), *extra]}]}}}})


def _all_pods_have(core: client.CoreV1Api, selector: str, flag: str, count: int) -> bool:
    pods = [p for p in core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    return len(pods) == count and all(flag in (p.spec.containers[0].args or []) for p in pods)


@pytest.fixture(scope="module")
def kubevirt() -> Iterator[Kubevirt]:
    with local_kubevirt(nodes=2) as cluster:
        _with_args(cluster.api, "Deployment", "virt-controller", ["--heartbeat-timeout", HEARTBEAT_TIMEOUT])
        _with_args(cluster.api, "DaemonSet", "virt-handler", ["--heartbeat-interval", HEARTBEAT_INTERVAL])
        eventually(lambda: _all_pods_have(cluster.core, "kubevirt.io=virt-controller", "--heartbeat-timeout", 2)
                   and _all_pods_have(cluster.core, "kubevirt.io=virt-handler", "--heartbeat-interval", 2)
                   and not missing_components(cluster.api, 2), timeout=120, what="new arguments rolled out",
                   interval=0.5)
        yield cluster


class _PhaseLog:
    """Every (uid, phase, reason) a VMI went through, from a watch: a Failed VMI of a VM
    that must run is replaced within milliseconds, too fast for polling to see."""

    def __init__(self, kubevirt: Kubevirt, name: str) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(kubevirt, name), daemon=True)
        self._thread.start()

    def _run(self, kubevirt: Kubevirt, name: str) -> None:
        try:
            self._stream(kubevirt, name)
        except Exception:  # the cluster went away under the watch: the log is complete
            pass

    def _stream(self, kubevirt: Kubevirt, name: str) -> None:
        for event in self._watch.stream(kubevirt.custom.list_namespaced_custom_object, "kubevirt.io", "v1",
                                        "default", "virtualmachineinstances", field_selector=f"metadata.name={name}",
                                        timeout_seconds=300):
            status = event["object"].get("status") or {}
            self.seen.append((event["object"]["metadata"]["uid"], status.get("phase", ""), status.get("reason", "")))

    def stop(self) -> None:
        self._watch.stop()


def test_vmis_of_a_silent_node_fail_and_run_again_elsewhere(kubevirt: Kubevirt) -> None:
    kubevirt.create("virtualmachines", vm_manifest("survivor", "Always", test_driver=True))
    first = eventually(lambda: kubevirt.running_vmi("survivor"), timeout=60, what="VMI Running", interval=0.3)
    node = first["status"]["nodeName"]
    handler = kubevirt.component_pids("virt_handler", node)
    assert len(handler) == 1
    phases = _PhaseLog(kubevirt, "survivor")
    os.kill(handler[0], signal.SIGSTOP)  # alive to the kubelet, silent to the cluster
    try:
        again = eventually(lambda: (v := kubevirt.running_vmi("survivor")) is not None
                           and v["metadata"]["uid"] != first["metadata"]["uid"] and v,
                           timeout=90, what="a new VMI Running", interval=0.3)
        assert again["status"]["nodeName"] != node
        failed = [reason for uid, phase, reason in phases.seen if uid == first["metadata"]["uid"] and phase == "Failed"]
        assert failed and "NodeUnresponsive" in failed[0]
        assert node not in schedulable_nodes(kubevirt.core)
    finally:
        os.kill(handler[0], signal.SIGCONT)
        phases.stop()
    eventually(lambda: node in schedulable_nodes(kubevirt.core), timeout=30, what="node schedulable again")
    node_labels = kubevirt.core.read_node(node).metadata.labels
    assert node_labels[labels.SCHEDULABLE_NODE_LABEL] == "true"
