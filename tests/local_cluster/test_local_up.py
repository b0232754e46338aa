"""`virtctl local up|status|down`: the whole local cluster as a user starts it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from kube_client.config import load_api_client
from tests.wait import eventually

REPO = Path(__file__).resolve().parents[2]


def virtctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "virtctl", *args], capture_output=True, text=True, timeout=240,
                            cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"virtctl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kv-local-", dir="/tmp"))
    yield path
    virtctl("local", "down", "--state-dir", str(path), check=False)
    shutil.rmtree(path, ignore_errors=True)


def _phase(core: client.CoreV1Api, name: str) -> str | None:
    try:
        return core.read_namespaced_pod(name, "default").status.phase
    except client.ApiException:
        return None


def test_up_runs_a_cluster_that_schedules_runs_and_stores(state_dir: Path) -> None:
    up = virtctl("local", "up", "--nodes", "2", "--state-dir", str(state_dir))
    assert "ready" in up.stdout and f"KUBECONFIG={state_dir}/kubeconfig" in up.stdout
    status = virtctl("local", "status", "--state-dir", str(state_dir))
    assert "node01     Ready" in status.stdout and "node02     Ready" in status.stdout
    core = client.CoreV1Api(load_api_client(state_dir / "kubeconfig"))
    crds = client.ApiextensionsV1Api(core.api_client).list_custom_resource_definition().items
    assert {c.metadata.name for c in crds} >= {"virtualmachineinstances.kubevirt.io", "virtualmachines.kubevirt.io"}
    core.create_namespaced_persistent_volume_claim("default", {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}}})
    core.create_namespaced_pod("default", {"metadata": {"name": "writer"}, "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "kubevirt-py/virtctl:latest",
                        "command": ["/bin/sh", "-c", "echo persisted > /data/file"],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}})
    eventually(lambda: _phase(core, "writer") == "Succeeded", timeout=60)
    pod = core.read_namespaced_pod("writer", "default")
    assert pod.spec.node_name in ("node01", "node02")
    claim = core.read_namespaced_persistent_volume_claim("data", "default")
    volume = core.read_persistent_volume(claim.spec.volume_name)
    assert (Path(volume.spec.host_path.path) / "file").read_text() == "persisted\n"


def test_down_and_up_again_keeps_the_cluster_state(state_dir: Path) -> None:
    down = virtctl("local", "down", "--state-dir", str(state_dir))
    assert "stopped" in down.stdout
    assert virtctl("local", "status", "--state-dir", str(state_dir), check=False).returncode == 3
    virtctl("local", "up", "--nodes", "2", "--state-dir", str(state_dir))
    core = client.CoreV1Api(load_api_client(state_dir / "kubeconfig"))
    assert core.read_namespaced_persistent_volume_claim("data", "default").status.phase == "Bound"
    assert core.read_namespaced_pod("writer", "default").status.phase == "Succeeded"
