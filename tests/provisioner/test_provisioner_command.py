"""`python -m local_cluster.provisioner --kubeconfig PATH --root DIR` as its own process."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

from kubernetes import client
from provisioner_testkit import Claims

from tests.wait import eventually as wait_for

from kube_client.rawapi import call


def test_module_entry_provisions_and_exits_on_sigterm(control_plane, core: client.CoreV1Api, tmp_path: Path) -> None:
    namespace = f"p-{uuid.uuid4().hex[:8]}"
    call(core.create_namespace, {"metadata": {"name": namespace}})
    claims = Claims(core, namespace)
    process = subprocess.Popen([sys.executable, "-m", "local_cluster.provisioner", "--kubeconfig",
                                str(control_plane.kubeconfig), "--root", str(tmp_path / "data")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        made = claims.create("from-cli", "5Mi")
        bound = claims.wait_bound("from-cli", timeout=20)
        assert bound["spec"]["volumeName"] == f"pvc-{made['metadata']['uid']}"
        claims.delete("from-cli")
        wait_for(lambda: claims.volume(bound["spec"]["volumeName"]) is None, what="the volume to be deleted")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(f"the provisioner did not exit on SIGTERM: {output.decode()}") from None
        call(core.delete_namespace, namespace)
    assert process.returncode == 0, output.decode()
    assert not list((tmp_path / "data").iterdir())
