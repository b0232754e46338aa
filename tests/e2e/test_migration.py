"""Live migration on the whole product: `virtctl migrate` moves a running guest to the other
node through the handlers' MigrationTunnel; its serial counter carries on there."""

from __future__ import annotations

import subprocess
import sys

import pytest

from guest_image import markers
from local_cluster.guest_console import serial_log_path
from tests.e2e.cluster import REPO, Kubevirt, last_counter, vm_manifest
from tests.wait import eventually

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 120.0


def _console_on(kubevirt: Kubevirt, vmi: dict, node: str) -> list[str]:
    pods = [p for p in kubevirt.launcher_pods(vmi["metadata"]["uid"]) if p["spec"].get("nodeName") == node]
    if not pods:
        return []
    try:
        return serial_log_path(kubevirt.state_dir, pods[0], vmi["metadata"]["uid"]).read_text(
            errors="replace").splitlines()
    except OSError:
        return []


def _migration(kubevirt: Kubevirt) -> dict | None:
    items = kubevirt.custom.list_namespaced_custom_object("kubevirt.io", "v1", "default",
                                                          "virtualmachineinstancemigrations")["items"]
    return items[0] if items else None


def test_virtctl_migrate_moves_a_running_guest(kubevirt: Kubevirt) -> None:
    kubevirt.create("virtualmachines", vm_manifest("mover", "Always"))
    vmi = eventually(lambda: kubevirt.running_vmi("mover"), timeout=BOOT_TIMEOUT, what="Running", interval=0.3)
    source = vmi["status"]["nodeName"]
    eventually(lambda: last_counter(_console_on(kubevirt, vmi, source)) > 1, timeout=BOOT_TIMEOUT,
               what="guest counting on the source")
    result = subprocess.run([sys.executable, "-m", "virtctl", "--kubeconfig", str(kubevirt.state_dir / "kubeconfig"),
                             "migrate", "mover"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    done = eventually(lambda: (m := _migration(kubevirt)) is not None
                      and (m.get("status") or {}).get("phase") in ("Succeeded", "Failed") and m,
                      timeout=180, what="migration finished", interval=0.5)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    moved = eventually(lambda: (v := kubevirt.vmi("mover")) is not None and v["status"].get("nodeName") != source
                       and v, timeout=30, what="VMI on the target node")
    target = moved["status"]["nodeName"]
    assert moved["metadata"]["uid"] == vmi["metadata"]["uid"] and moved["status"]["phase"] == "Running"
    state = moved["status"]["migrationState"]
    assert state["completed"] and not state.get("failed") and state["sourceNode"] == source
    last_on_source = last_counter(_console_on(kubevirt, vmi, source))
    lines = eventually(lambda: (t := _console_on(kubevirt, vmi, target)) and last_counter(t) > last_on_source and t,
                       timeout=60, what="the counter continuing on the target")
    assert not any(markers.BOOTED in line for line in lines), "the guest rebooted on the target"
    kubevirt.delete("virtualmachines", "mover")
    eventually(lambda: kubevirt.vmi("mover") is None, timeout=90, what="mover removed")
