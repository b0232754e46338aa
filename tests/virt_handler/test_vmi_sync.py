"""virt-handler's VMI loop with a real launcher: a Scheduled VMI is started once its launcher
is up, reaches Running and Ready, and a deleted VMI's guest is shut down (Succeeded)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from oci_layout.store import add_image
from tests.wait import eventually
from virt_handler.vmi_sync import VMISync
from virt_launcher.standalone import LauncherProcess

pytestmark = pytest.mark.slow
GROUP = ("kubevirt.io", "v1", "default", "virtualmachineinstances")


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kv-h-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def api(kubevirt_api) -> client.ApiClient:
    return kubevirt_api


def _phase(custom: client.CustomObjectsApi, name: str) -> str:
    return (custom.get_namespaced_custom_object(*GROUP, name).get("status") or {}).get("phase", "")


def test_scheduled_vmi_runs_and_a_deleted_one_is_shut_down(api, work: Path) -> None:
    (work / "rootfs" / "disk").mkdir(parents=True)
    with open(work / "rootfs" / "disk" / "blank.img", "wb") as disk:
        disk.truncate(1024 * 1024)
    add_image(work / "store", "kubevirt-py/blank:latest", work / "rootfs")
    custom = client.CustomObjectsApi(api)
    vmi = custom.create_namespaced_custom_object(*GROUP[:3], GROUP[3], {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": "synced", "labels": {"kubevirt.io/nodeName": "node01"},
                     "finalizers": ["kubevirt.io/test-hold"]},
        "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}},
                 "terminationGracePeriodSeconds": 1,
                 "volumes": [{"name": "root", "containerDisk": {"image": "kubevirt-py/blank:latest"}}]}})
    custom.patch_namespaced_custom_object_status(*GROUP, "synced", {"status": {"phase": "Scheduled",
                                                                             "nodeName": "node01"}})
    handler = VMISync(api, "node01", work / "sockets")
    handler.start()
    launcher = None
    try:
        uid = vmi["metadata"]["uid"]
        launcher = LauncherProcess(work, vmi, work / "store", handler.notify_socket,
                                   cmd_socket=work / "sockets" / uid / "launcher.sock")
        eventually(lambda: _phase(custom, "synced") == "Running", timeout=60)
        status = custom.get_namespaced_custom_object(*GROUP, "synced")["status"]
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        # The Running event's way to the status was measured from the launcher's stamp.
        counts = [s.value for m in handler.event_latency.collect() for s in m.samples if s.name.endswith("_count")]
        assert counts and counts[0] >= 1
        custom.delete_namespaced_custom_object(*GROUP, "synced")
        eventually(lambda: _phase(custom, "synced") == "Succeeded", timeout=60)
        assert launcher.wait_exit(30) == 0
    finally:
        if launcher is not None:
            launcher.stop()
        handler.stop()
        custom.patch_namespaced_custom_object(*GROUP, "synced", {"metadata": {"finalizers": None}})
