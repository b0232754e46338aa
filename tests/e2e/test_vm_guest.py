"""A real guest through the whole product: kubectl-style apply of the demo VM, run
strategies, a virt-handler killed under a running guest, a crashed guest under
RerunOnFailure, and deletion leaving nothing behind."""

from __future__ import annotations

import pytest

from guest_image import markers
from local_cluster.apply import apply
from tests.e2e.cluster import (REPO, Kubevirt, kill_9, last_counter, qemu_pids, vm_manifest)
from tests.wait import eventually

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 120.0
DEMO = "demo"


def _uid(vmi: dict) -> str:
    return vmi["metadata"]["uid"]


def _booted_and_counting(kubevirt: Kubevirt, vmi: dict, above: int = 0) -> bool:
    lines = kubevirt.console(vmi)
    return any(markers.BOOTED in line for line in lines) and last_counter(lines) > above


def test_demo_vm_runs_with_cloud_init_and_reports_its_status(kubevirt: Kubevirt) -> None:
    apply(kubevirt.api, [REPO / "deploy" / "examples" / "vm-demo.yaml"])
    vmi = eventually(lambda: kubevirt.running_vmi(DEMO), timeout=BOOT_TIMEOUT, what="demo VMI Running", interval=0.3)
    status = vmi["status"]
    assert [t["phase"] for t in status["phaseTransitionTimestamps"]][-1] == "Running"
    assert {"Pending", "Scheduled", "Running"} <= {t["phase"] for t in status["phaseTransitionTimestamps"]}
    pod = kubevirt.launcher_pods(_uid(vmi))[0]
    assert status["nodeName"] == pod["spec"]["nodeName"]
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == status["nodeName"]
    assert vmi["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"
    interface = status["interfaces"][0]
    assert interface["name"] == "default" and interface["ipAddress"] == pod["status"]["podIP"]
    assert interface["mac"] and interface["infoSource"] == "domain"
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "True" and ready["LiveMigratable"] == "True"
    eventually(lambda: kubevirt.get("virtualmachines", DEMO)["status"].get("printableStatus") == "Running",
               timeout=30, what="VM printableStatus Running")
    lines = eventually(lambda: [x for x in kubevirt.console(vmi) if markers.USERDATA_DONE in x] and kubevirt.console(vmi),
                       timeout=BOOT_TIMEOUT, what="cloud-init user data ran", interval=0.5)
    assert f"hello from cloud-init on {DEMO}" in "\n".join(lines)
    assert markers.userdata_exit_code(next(x for x in lines if markers.USERDATA_DONE in x)) == 0


def test_a_killed_handler_loses_no_guest(kubevirt: Kubevirt) -> None:
    vmi = kubevirt.running_vmi(DEMO)
    assert vmi is not None
    node = vmi["status"]["nodeName"]
    before = eventually(lambda: last_counter(kubevirt.console(vmi)), timeout=BOOT_TIMEOUT, what="guest counting")
    handlers = kubevirt.component_pids("virt_handler", node)
    assert handlers, f"no virt-handler process for {node}"
    kill_9(handlers)
    # The kubelet restarts the container; the new handler finds the launcher again.
    eventually(lambda: [p for p in kubevirt.component_pids("virt_handler", node) if p not in handlers],
               timeout=60, what="virt-handler restarted", interval=0.3)
    eventually(lambda: last_counter(kubevirt.console(vmi)) > before + 2, timeout=30, what="guest still counting")
    lines = kubevirt.console(vmi)
    assert sum(markers.BOOTED in line for line in lines) == 1, "the guest was restarted"
    after = kubevirt.vmi(DEMO)
    assert _uid(after) == _uid(vmi) and after["status"]["phase"] == "Running"


def test_halted_stops_the_guest_and_always_starts_a_new_one(kubevirt: Kubevirt) -> None:
    vmi = kubevirt.running_vmi(DEMO)
    assert vmi is not None
    first_uid = _uid(vmi)
    pod = kubevirt.launcher_pods(first_uid)[0]
    kubevirt.patch("virtualmachines", DEMO, {"spec": {"runStrategy": "Halted"}})
    # The restarted handler (previous test) must be the one that powers the guest off.
    eventually(lambda: kubevirt.vmi(DEMO) is None, timeout=90, what="VMI removed", interval=0.3)
    eventually(lambda: not kubevirt.launcher_pods(first_uid), timeout=60, what="launcher pod removed")
    eventually(lambda: not qemu_pids(first_uid), timeout=30, what="QEMU gone")
    eventually(lambda: kubevirt.get("virtualmachines", DEMO)["status"].get("printableStatus") == "Stopped",
               timeout=30, what="VM Stopped")
    pod_dir = kubevirt.state_dir / "nodes" / pod["spec"]["nodeName"] / "pods" / pod["metadata"]["uid"]
    eventually(lambda: not pod_dir.exists(), timeout=30, what="the launcher's disks removed from the node")

    kubevirt.patch("virtualmachines", DEMO, {"spec": {"runStrategy": "Always"}})
    again = eventually(lambda: kubevirt.running_vmi(DEMO), timeout=BOOT_TIMEOUT, what="VMI Running again",
                       interval=0.3)
    assert _uid(again) != first_uid
    eventually(lambda: _booted_and_counting(kubevirt, again), timeout=BOOT_TIMEOUT, what="new guest booted")


def test_rerun_on_failure_restarts_a_crashed_guest(kubevirt: Kubevirt) -> None:
    kubevirt.create("virtualmachines", vm_manifest("crashy", "RerunOnFailure"))
    vmi = eventually(lambda: kubevirt.running_vmi("crashy"), timeout=BOOT_TIMEOUT, what="crashy Running",
                     interval=0.3)
    eventually(lambda: _booted_and_counting(kubevirt, vmi), timeout=BOOT_TIMEOUT, what="crashy booted")
    kill_9(qemu_pids(_uid(vmi)))  # the guest dies under its launcher
    replacement = eventually(
        lambda: (v := kubevirt.running_vmi("crashy")) is not None and _uid(v) != _uid(vmi) and v,
        timeout=BOOT_TIMEOUT, what="a new crashy VMI Running", interval=0.3)
    eventually(lambda: _booted_and_counting(kubevirt, replacement), timeout=BOOT_TIMEOUT, what="rerun guest booted")
    kubevirt.delete("virtualmachines", "crashy")
    eventually(lambda: kubevirt.vmi("crashy") is None, timeout=90, what="crashy VMI removed")


def test_deleting_the_vm_removes_its_vmi_pod_guest_and_disks(kubevirt: Kubevirt) -> None:
    vmi = kubevirt.running_vmi(DEMO)
    assert vmi is not None
    pod = kubevirt.launcher_pods(_uid(vmi))[0]
    node = pod["spec"]["nodeName"]
    sockets = kubevirt.state_dir / "nodes" / node / "host" / "var" / "run" / "kubevirt" / "sockets" / _uid(vmi)
    assert sockets.exists()
    kubevirt.delete("virtualmachines", DEMO)
    eventually(lambda: kubevirt.get("virtualmachines", DEMO) is None and kubevirt.vmi(DEMO) is None, timeout=90,
               what="VM and VMI removed", interval=0.3)
    eventually(lambda: not kubevirt.launcher_pods(_uid(vmi)), timeout=60, what="launcher pod removed")
    eventually(lambda: not qemu_pids(_uid(vmi)), timeout=30, what="QEMU gone")
    pod_dir = kubevirt.state_dir / "nodes" / node / "pods" / pod["metadata"]["uid"]
    eventually(lambda: not pod_dir.exists(), timeout=30, what="the launcher's disks removed from the node")
    eventually(lambda: not sockets.exists(), timeout=30, what="the launcher's socket directory removed")
