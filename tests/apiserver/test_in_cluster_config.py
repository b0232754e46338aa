"""End to end: a pod run by the process kubelet reaches the API server with nothing but
load_incluster_config(), as virt-controller and virt-handler do when deployed as pods."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.tempdirs import scratch_dir
from tests.wait import eventually

IMAGE = "kubevirt-py/virtctl:latest"  # our own entry points: no image store needed
REPO = Path(__file__).resolve().parents[2]

# Runs inside the pod: the token, CA and namespace come only from the projected volume,
# the address only from KUBERNETES_SERVICE_HOST/PORT.
IN_POD = """
import sys
from kubernetes import client, config
config.load_incluster_config()
namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
accounts = client.CoreV1Api().list_namespaced_service_account(namespace).items
open(sys.argv[1], "w").write(namespace + " " + ",".join(a.metadata.name for a in accounts))
"""


@pytest.fixture(scope="module")
def core(control_plane) -> Iterator[client.CoreV1Api]:
    root = control_plane.state_dir / "node-sa"
    root.mkdir(parents=True, exist_ok=True)
    with open(root.parent / "node-sa.log", "ab") as log:
        kubelet = subprocess.Popen([sys.executable, "-m", "local_cluster.kubelet", "--kubeconfig",
                                    str(control_plane.kubeconfig), "--node-name", "node-sa", "--node-index", "7",
                                    "--root", str(root)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        api = client.CoreV1Api(control_plane.api_client())
        eventually(lambda: _ready(api, "node-sa"), timeout=30, what="node-sa Ready")
        yield api
    finally:
        kubelet.terminate()
        try:
            kubelet.wait(30)
        except subprocess.TimeoutExpired:
            kubelet.kill()
            kubelet.wait(5)


def _ready(core: client.CoreV1Api, node: str) -> bool:
    try:
        conditions = core.read_node(node).status.conditions or []
    except (client.ApiException, AttributeError):
        return False
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


@pytest.fixture
def outdir() -> Iterator[Path]:
    # Outside /tmp on purpose: inside a pod, /tmp is the pod's own.
    with scratch_dir("kv-sa-", "/var/tmp") as path:
        yield path


def test_a_pod_talks_to_the_api_server_with_load_incluster_config(core, namespace, outdir):
    result = outdir / "result"
    core.create_namespaced_pod(namespace, {"metadata": {"name": "in-cluster"}, "spec": {
        "nodeName": "node-sa", "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": IMAGE, "command": [sys.executable, "-c", IN_POD, str(result)],
                        "volumeMounts": [{"name": "out", "mountPath": str(outdir)}]}],
        "volumes": [{"name": "out", "hostPath": {"path": str(outdir)}}]}})
    phase = eventually(lambda: core.read_namespaced_pod("in-cluster", namespace).status.phase
                       in ("Succeeded", "Failed") and core.read_namespaced_pod("in-cluster", namespace).status.phase,
                       timeout=60, what="pod finished")
    assert phase == "Succeeded", core.read_namespaced_pod("in-cluster", namespace).status
    assert result.read_text() == f"{namespace} default"
