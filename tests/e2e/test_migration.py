"""Live migration on the whole product: `virtctl migrate` moves a running guest to the other
node through the handlers' MigrationTunnel; its serial counter carries on there, and what it
wrote to its emptyDisk reads back from the target node's copy. kubectl drain migrates too;
the source handler's /metrics shows a migration's progress; every fault in flight (cancel,
target killed, tunnel cut) leaves the guest running on the source."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import pytest

from guest_image import markers
from local_cluster.guest_console import serial_log_path
from pki.cluster_ca import SECRET as CA_SECRET
from tests import disk_mark
from tests.e2e.cluster import REPO, Kubevirt, kill_9, last_counter, pids, vm_manifest
from tests.metrics_text import scrape
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
    mark = f"mark-{time.time_ns()}"
    vm = vm_manifest("mover", "Always", user_data=disk_mark.user_data(mark))
    vm["spec"]["template"]["spec"]["volumes"].append(disk_mark.volume())
    kubevirt.create("virtualmachines", vm)
    vmi = eventually(lambda: kubevirt.running_vmi("mover"), timeout=BOOT_TIMEOUT, what="Running", interval=0.3)
    source = vmi["status"]["nodeName"]
    eventually(lambda: last_counter(_console_on(kubevirt, vmi, source)) > 1, timeout=BOOT_TIMEOUT,
               what="guest counting on the source")
    eventually(lambda: disk_mark.shows("\n".join(_console_on(kubevirt, vmi, source)), mark), timeout=30,
               what="the mark read back on the source")
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
    lines = eventually(lambda: (t := _console_on(kubevirt, vmi, target)) and last_counter(t) > last_on_source + 1
                       and t, timeout=30, what="a disk read on the target")
    assert disk_mark.shows("\n".join(lines), mark), lines
    kubevirt.delete("virtualmachines", "mover")
    eventually(lambda: kubevirt.vmi("mover") is None, timeout=90, what="mover removed")


def _kubectl(kubevirt: Kubevirt, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "--kubeconfig", str(kubevirt.state_dir / "kubeconfig"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_kubectl_drain_live_migrates_the_guest_off_the_node(kubevirt: Kubevirt) -> None:
    """kubectl drain cordons the node (the evacuation controller starts a migration) and
    evicts the launcher pod (virt-api refuses with 429 and marks the VMI) until the guest
    has moved and its old pod has ended."""
    vm = vm_manifest("evacuee", "Always")
    vm["spec"]["template"]["spec"]["evictionStrategy"] = "LiveMigrate"
    kubevirt.create("virtualmachines", vm)
    vmi = eventually(lambda: kubevirt.running_vmi("evacuee"), timeout=BOOT_TIMEOUT, what="Running", interval=0.3)
    source = vmi["status"]["nodeName"]
    eventually(lambda: last_counter(_console_on(kubevirt, vmi, source)) > 1, timeout=BOOT_TIMEOUT,
               what="guest counting")
    try:
        drain = _kubectl(kubevirt, "drain", source, "--ignore-daemonsets", "--delete-emptydir-data",
                         "--pod-selector=kubevirt.io=virt-launcher", "--timeout=180s", timeout=240)
        assert drain.returncode == 0, drain.stdout + drain.stderr
        assert "Eviction triggered evacuation of VMI" in drain.stderr + drain.stdout, drain.stderr
        moved = kubevirt.vmi("evacuee")
        assert moved["metadata"]["uid"] == vmi["metadata"]["uid"] and moved["status"]["nodeName"] != source
        names = [m["metadata"]["name"] for m in kubevirt.custom.list_namespaced_custom_object(
            "kubevirt.io", "v1", "default", "virtualmachineinstancemigrations")["items"]]
        assert any(name.startswith("kubevirt-evacuation-") for name in names), names
        last_on_source = last_counter(_console_on(kubevirt, vmi, source))
        target = moved["status"]["nodeName"]
        eventually(lambda: last_counter(_console_on(kubevirt, vmi, target)) > last_on_source, timeout=60,
                   what="the counter continuing on the target")
    finally:
        _kubectl(kubevirt, "uncordon", source)
    kubevirt.delete("virtualmachines", "evacuee")
    eventually(lambda: kubevirt.vmi("evacuee") is None, timeout=90, what="evacuee removed")


def _set_bandwidth(kubevirt: Kubevirt, bandwidth: str | None) -> None:
    body = {"metadata": {"name": "kubevirt-config", "namespace": "kubevirt"},
            "data": {"migrations": f"bandwidthPerMigration: {bandwidth}\n" if bandwidth else "{}\n"}}
    try:
        kubevirt.core.create_namespaced_config_map("kubevirt", body)
    except Exception:
        kubevirt.core.replace_namespaced_config_map("kubevirt-config", "kubevirt", body)


def _migration_in_flight(kubevirt: Kubevirt, name: str) -> tuple[dict, str]:
    """A real guest `name` counting, and its migration `<name>-move` Running at 1 MiB/s
    (~70 MiB to move: slow enough to be interfered with). Returns (the VMI, its source node)."""
    _set_bandwidth(kubevirt, "1Mi")
    kubevirt.create("virtualmachines", vm_manifest(name, "Always"))
    vmi = eventually(lambda: kubevirt.running_vmi(name), timeout=BOOT_TIMEOUT, what="Running", interval=0.3)
    source = vmi["status"]["nodeName"]
    eventually(lambda: last_counter(_console_on(kubevirt, vmi, source)) > 1, timeout=BOOT_TIMEOUT,
               what="guest counting")
    time.sleep(10.5)  # the controller's cached config (read every 10 s) has the bandwidth now
    kubevirt.create("virtualmachineinstancemigrations", {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": f"{name}-move"}, "spec": {"vmiName": name}})
    eventually(lambda: (kubevirt.get("virtualmachineinstancemigrations", f"{name}-move").get("status") or {})
               .get("phase") == "Running", timeout=90, what="migration Running", interval=0.3)
    return vmi, source


def _still_counting_on_the_source_then_removed(kubevirt: Kubevirt, vmi: dict, source: str) -> None:
    name = vmi["metadata"]["name"]
    after = kubevirt.vmi(name)
    assert after["status"]["nodeName"] == source and after["status"]["phase"] == "Running"
    before = last_counter(_console_on(kubevirt, vmi, source))
    eventually(lambda: last_counter(_console_on(kubevirt, vmi, source)) > before + 1, timeout=30,
               what="still counting on the source")
    _set_bandwidth(kubevirt, None)
    kubevirt.delete("virtualmachines", name)
    eventually(lambda: kubevirt.vmi(name) is None, timeout=90, what=f"{name} removed")


def _handler_metrics(kubevirt: Kubevirt, node: str) -> dict[str, dict[tuple, float]]:
    """The node's virt-handler /metrics, verified with the cluster CA: name -> labels -> value."""
    pod = next(p for p in kubevirt.core.list_namespaced_pod("kubevirt", label_selector="kubevirt.io=virt-handler").items
               if p.spec.node_name == node)
    ca = base64.b64decode(kubevirt.core.read_namespaced_secret(CA_SECRET, "kubevirt").data["tls.crt"])
    found: dict[str, dict[tuple, float]] = {}
    for name, labels, value in scrape(f"https://{pod.status.pod_ip}:8443/metrics", ca):
        found.setdefault(name, {})[tuple(sorted(labels.items()))] = value
    return found


def test_a_cancelled_migration_leaves_the_guest_on_the_source(kubevirt: Kubevirt) -> None:
    vmi, source = _migration_in_flight(kubevirt, "stayer")
    # While it runs, the source handler exports its progress.
    labels = (("name", "stayer"), ("namespace", "default"), ("node", source))
    remaining = eventually(lambda: _handler_metrics(kubevirt, source).get(
        "kubevirt_vmi_migration_data_remaining_bytes", {}).get(labels), timeout=30, what="migration metrics")
    assert remaining > 0
    kubevirt.delete("virtualmachineinstancemigrations", "stayer-move")
    eventually(lambda: kubevirt.get("virtualmachineinstancemigrations", "stayer-move") is None, timeout=60,
               what="the cancelled migration removed", interval=0.5)
    state = kubevirt.vmi("stayer")["status"]["migrationState"]
    assert state.get("abortStatus") == "Succeeded" and state.get("failed"), state
    _still_counting_on_the_source_then_removed(kubevirt, vmi, source)


def test_a_vmi_on_an_unshared_claim_is_refused_with_the_reason(kubevirt: Kubevirt) -> None:
    kubevirt.core.create_namespaced_persistent_volume_claim("default", {
        "metadata": {"name": "rwo-data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "16Mi"}}}})
    vm = vm_manifest("pinned", "Always", test_driver=True)
    spec = vm["spec"]["template"]["spec"]
    spec["domain"]["devices"]["disks"].append({"name": "data", "disk": {"bus": "virtio"}})
    spec["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "rwo-data"}})
    kubevirt.create("virtualmachines", vm)
    eventually(lambda: any(c["type"] == "LiveMigratable" and c["status"] == "False"
                           for c in ((kubevirt.running_vmi("pinned") or {}).get("status") or {}).get("conditions")
                           or []), timeout=90, what="LiveMigratable False", interval=0.3)
    result = subprocess.run([sys.executable, "-m", "virtctl", "--kubeconfig", str(kubevirt.state_dir / "kubeconfig"),
                             "migrate", "pinned"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1 and "PVC rwo-data is not shared" in result.stderr, result.stderr
    kubevirt.delete("virtualmachines", "pinned")
    eventually(lambda: kubevirt.vmi("pinned") is None, timeout=90, what="pinned removed")


def test_a_target_killed_in_flight_leaves_the_guest_on_the_source(kubevirt: Kubevirt) -> None:
    vmi, source = _migration_in_flight(kubevirt, "survivor")
    target_pod = kubevirt.vmi("survivor")["status"]["migrationState"]["targetPod"]
    launchers = pids(argv_has="virt_launcher", env={"POD_NAME": target_pod})
    assert launchers, f"no launcher process for {target_pod}"
    kill_9(launchers)
    done = eventually(lambda: (kubevirt.get("virtualmachineinstancemigrations", "survivor-move").get("status") or {})
                      .get("phase") == "Failed" and kubevirt.get("virtualmachineinstancemigrations", "survivor-move"),
                      timeout=90, what="migration Failed", interval=0.5)
    assert done["status"]["phase"] == "Failed"
    _still_counting_on_the_source_then_removed(kubevirt, vmi, source)


def test_a_tunnel_cut_in_flight_leaves_the_guest_on_the_source(kubevirt: Kubevirt) -> None:
    vmi, source = _migration_in_flight(kubevirt, "cut")
    # The source handler holds the tunnel: killing it cuts both channels mid-stream.
    kill_9(kubevirt.component_pids("virt_handler", source))
    done = eventually(lambda: (m := kubevirt.get("virtualmachineinstancemigrations", "cut-move")) is not None
                      and (m.get("status") or {}).get("phase") in ("Failed", "Succeeded") and m,
                      timeout=120, what="migration finished", interval=0.5)
    assert done["status"]["phase"] == "Failed", done["status"]
    _still_counting_on_the_source_then_removed(kubevirt, vmi, source)

