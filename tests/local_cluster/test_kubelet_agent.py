"""The process kubelet against the API server: node registration, lease, pods run and
reported, graceful deletion, and pods surviving a kubelet killed with SIGKILL."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.local_cluster.kubelet_process import Kubelet, node_ready
from tests.wait import eventually

IMAGE = "kubevirt-py/virtctl:latest"  # our own entry points need no image store


@pytest.fixture(scope="module")
def kubelet(control_plane) -> Iterator[Kubelet]:
    root = control_plane.state_dir / "node01"
    root.mkdir(parents=True, exist_ok=True)
    agent = Kubelet(control_plane.kubeconfig, root)
    yield agent
    agent.close()


@pytest.fixture(scope="module")
def core(control_plane, kubelet) -> client.CoreV1Api:
    api = client.CoreV1Api(control_plane.api_client())
    eventually(lambda: node_ready(api, "node01"), timeout=20)
    return api


def _pod(name: str, command: str, restart: str = "Always") -> dict:
    return {"metadata": {"name": name}, "spec": {"nodeName": "node01", "restartPolicy": restart,
                                                 "terminationGracePeriodSeconds": 5,
                                                 "containers": [{"name": "main", "image": IMAGE,
                                                                 "command": ["/bin/sh", "-c", command]}]}}


def _phase(core: client.CoreV1Api, name: str) -> str:
    return core.read_namespaced_pod(name, "default").status.phase


def test_node_registers_with_capacity_and_lease(control_plane, core) -> None:
    node = core.read_node("node01")
    eventually(lambda: client.CoordinationV1Api(control_plane.api_client()).read_namespaced_lease(
        "node01", "kube-node-lease"), timeout=10)
    assert node.status.allocatable["pods"] == "110" and node.status.node_info.kubelet_version
    assert node.status.addresses[0].address == "127.1.0.1"
    lease = client.CoordinationV1Api(control_plane.api_client()).read_namespaced_lease("node01", "kube-node-lease")
    assert lease.spec.holder_identity == "node01" and lease.spec.renew_time is not None


def test_pods_run_and_report_status(core) -> None:
    core.create_namespaced_pod("default", _pod("done", "exit 0", restart="Never"))
    core.create_namespaced_pod("default", _pod("fails", "exit 3", restart="Never"))
    core.create_namespaced_pod("default", _pod("runs", "sleep 300"))
    eventually(lambda: _phase(core, "done") == "Succeeded" and _phase(core, "fails") == "Failed"
               and _phase(core, "runs") == "Running", timeout=20)
    failed = core.read_namespaced_pod("fails", "default").status.container_statuses[0]
    assert failed.state.terminated.exit_code == 3
    running = core.read_namespaced_pod("runs", "default")
    assert running.status.pod_ip.startswith("127.1.") and running.status.container_statuses[0].ready
    for name in ("done", "fails"):
        core.delete_namespaced_pod(name, "default")


def test_graceful_deletion_ends_with_the_kubelet_removing_the_pod(core) -> None:
    core.create_namespaced_pod("default", _pod("term", "trap 'exit 0' TERM; while true; do sleep 0.1; done"))
    eventually(lambda: _phase(core, "term") == "Running", timeout=20)
    core.delete_namespaced_pod("term", "default")
    assert core.read_namespaced_pod("term", "default").metadata.deletion_timestamp is not None

    def gone() -> bool:
        try:
            core.read_namespaced_pod("term", "default")
            return False
        except client.ApiException as error:
            return error.status == 404
    eventually(gone, timeout=20)


def test_pods_survive_a_killed_kubelet(core, kubelet) -> None:
    eventually(lambda: _phase(core, "runs") == "Running", timeout=20)
    before = core.read_namespaced_pod("runs", "default").status.container_statuses[0]
    kubelet.stop(signal.SIGKILL)
    kubelet.spawn()
    time.sleep(1.0)
    eventually(lambda: node_ready(core, "node01"), timeout=20)
    after = eventually(lambda: core.read_namespaced_pod("runs", "default").status.container_statuses[0], timeout=10)
    assert after.restart_count == before.restart_count == 0
    assert after.state.running.started_at == before.state.running.started_at
    core.delete_namespaced_pod("runs", "default", grace_period_seconds=1)
