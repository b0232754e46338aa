"""kubectl against the local API server: discovery, apply, tables, scale, label, delete."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")

# kubectl is not a Debian package; machines of this kind ship it (google-cloud-sdk).
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")


def kubectl(kubeconfig: Path, *args: str) -> str:
    result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_kubectl_works_end_to_end(control_plane) -> None:
    config = control_plane.kubeconfig
    assert "default" in kubectl(config, "get", "namespaces")
    applied = kubectl(config, "apply", "-f", str(REPO / "deploy" / "crds"))
    assert "virtualmachines.kubevirt.io" in applied
    example = REPO / "tests" / "fixtures" / "upstream_examples" / "vmi-replicaset-cirros.yaml"
    assert "created" in kubectl(config, "apply", "-f", str(example))
    assert "unchanged" in kubectl(config, "apply", "-f", str(example))
    kubectl(config, "scale", "vmirs", "vmi-replicaset-cirros", "--replicas=4")
    table = kubectl(config, "get", "vmirs")
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert row.split()[:2] == ["vmi-replicaset-cirros", "4"]
    kubectl(config, "label", "vmirs", "vmi-replicaset-cirros", "team=virt")
    assert kubectl(config, "get", "vmirs", "-l", "team=virt", "-o", "name").strip() == \
        "virtualmachineinstancereplicaset.kubevirt.io/vmi-replicaset-cirros"
    resources = kubectl(config, "api-resources", "--api-group=kubevirt.io")
    assert "vmi" in resources and "vmirs" in resources
    assert "deleted" in kubectl(config, "delete", "vmirs", "vmi-replicaset-cirros")
