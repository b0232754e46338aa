"""Live migration on the whole product: `virtctl migrate` moves a running guest to the other
node through the handlers' MigrationTunnel; its serial counter carries on there, and what it
wrote to its emptyDisk reads back from the target node's copy. kubectl drain migrates too;
the source handler's /metrics shows a migration's progress; twenty faults in flight in a row
(cancel, target launcher killed, tunnel cut, a handler killed) each leave the guest running on
the source."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from guest_image import markers
from local_cluster.guest_console import serial_log_path
from local_cluster.kubevirt_readiness import missing_components
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


def _handler_metrics(kubevirt: Kubevirt, node: str) -> dict[str, dict[tuple, float]]:
    """The node's virt-handler /metrics, verified with the cluster CA: name -> labels -> value."""
    pod = next(p for p in kubevirt.core.list_namespaced_pod("kubevirt", label_selector="kubevirt.io=virt-handler").items
               if p.spec.node_name == node)
    ca = base64.b64decode(kubevirt.core.read_namespaced_secret(CA_SECRET, "kubevirt").data["tls.crt"])
    found: dict[str, dict[tuple, float]] = {}
    for name, labels, value in scrape(f"https://{pod.status.pod_ip}:8443/metrics", ca):
        found.setdefault(name, {})[tuple(sorted(labels.items()))] = value
    return found


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


# -- faults in flight ----------------------------------------------------------------------

FAULTS_IN_A_ROW = 20


def _start_migration(kubevirt: Kubevirt, name: str, number: int) -> tuple[str, dict]:
    """Migration number `number` of `name`, once Running (1 MiB/s: it stays in flight)."""
    migration = f"{name}-move-{number}"
    kubevirt.create("virtualmachineinstancemigrations", {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": migration}, "spec": {"vmiName": name}})
    eventually(lambda: (kubevirt.get("virtualmachineinstancemigrations", migration).get("status") or {})
               .get("phase") == "Running", timeout=90, what=f"{migration} Running", interval=0.2)
    state = eventually(lambda: (s := kubevirt.vmi(name)["status"].get("migrationState") or {})
                       .get("migrationUid") and s.get("targetNodeAddress") and s, timeout=30,
                       what=f"{migration}'s target published", interval=0.2)
    return migration, state


def _cancel(kubevirt: Kubevirt, migration: str, state: dict, source: str) -> None:
    kubevirt.delete("virtualmachineinstancemigrations", migration)


def _kill_target_launcher(kubevirt: Kubevirt, migration: str, state: dict, source: str) -> None:
    launchers = pids(argv_has="virt_launcher", env={"POD_NAME": state["targetPod"]})
    assert launchers, f"no launcher process for {state['targetPod']}"
    kill_9(launchers)


def _progress(kubevirt: Kubevirt, source: str, series: str) -> float | None:
    """The source handler's gauge of stayer's current migration (none once it ended)."""
    labels = (("name", "stayer"), ("namespace", "default"), ("node", source))
    return _handler_metrics(kubevirt, source).get(series, {}).get(labels)


def _cut_tunnel(kubevirt: Kubevirt, migration: str, state: dict, source: str) -> None:
    """Abort every TCP connection to the target handler's NodeService address: the
    tunnel's channels die mid-stream while both handlers live on (a network cut)."""
    # Cut once guest memory flows through the tunnel: a cut before the source dialled it
    # would only hit other NodeService connections, and the migration would go through.
    eventually(lambda: (_progress(kubevirt, source, "kubevirt_vmi_migration_data_processed_bytes") or 0) > 0,
               timeout=30, what=f"{migration}'s memory flowing", interval=0.1)
    host, port = state["targetNodeAddress"].rsplit(":", 1)
    cut = subprocess.run(["ss", "-K", "dst", host, "dport", "=", port], capture_output=True, text=True, timeout=10)
    # Listed as killed; the handlers' sockets are IPv6 ones, showing v4-mapped addresses.
    assert cut.returncode == 0 and re.search(rf"{re.escape(host)}\]?:{port}\s", cut.stdout), cut.stdout + cut.stderr


def _kill_handler(node: Callable[[dict, str], str]) -> Callable[[Kubevirt, str, dict, str], None]:
    def kill(kubevirt: Kubevirt, migration: str, state: dict, source: str) -> None:
        handler = kubevirt.component_pids("virt_handler", node(state, source))
        assert len(handler) == 1, handler
        kill_9(handler)
    return kill


# Each handler is killed once only: the kubelet restarts a container at once the first
# time, then backs off from 10 s.
FAULTS = [*[_cancel, _kill_target_launcher, _cut_tunnel] * 6,
          _kill_handler(lambda state, source: source), _kill_handler(lambda state, source: state["targetNode"])]


def _ended(kubevirt: Kubevirt, migration: str, fault: Callable) -> bool:
    if fault is _cancel:
        return kubevirt.get("virtualmachineinstancemigrations", migration) is None
    phase = ((kubevirt.get("virtualmachineinstancemigrations", migration) or {}).get("status") or {}).get("phase")
    assert phase != "Succeeded", f"{migration} succeeded despite {fault.__name__}"
    return phase == "Failed"


def _ready_for_the_next(kubevirt: Kubevirt, vmi: dict, state: dict) -> bool:
    """The failed target pod gone and both handlers serving again."""
    target_pods = [p for p in kubevirt.launcher_pods(vmi["metadata"]["uid"])
                   if p["metadata"]["name"] == state["targetPod"] and not p["metadata"].get("deletionTimestamp")
                   and p["status"].get("phase") not in ("Succeeded", "Failed")]
    return not target_pods and not missing_components(kubevirt.api, 2)


def test_twenty_faults_in_flight_each_leave_the_guest_running_on_the_source(kubevirt: Kubevirt) -> None:
    """Migrations cancelled, their target launcher killed, their tunnel cut, either handler
    killed: every time the migration fails and the same guest keeps counting on the source."""
    _set_bandwidth(kubevirt, "1Mi")
    kubevirt.create("virtualmachines", vm_manifest("stayer", "Always"))
    vmi = eventually(lambda: kubevirt.running_vmi("stayer"), timeout=BOOT_TIMEOUT, what="Running", interval=0.3)
    source = vmi["status"]["nodeName"]
    eventually(lambda: last_counter(_console_on(kubevirt, vmi, source)) > 1, timeout=BOOT_TIMEOUT,
               what="guest counting")
    time.sleep(10.5)  # the controller's cached config (read every 10 s) has the bandwidth now
    assert len(FAULTS) == FAULTS_IN_A_ROW
    for number, fault in enumerate(FAULTS, start=1):
        migration, state = _start_migration(kubevirt, "stayer", number)
        if number == 1:  # while one runs, the source handler exports its progress
            remaining = eventually(lambda: _progress(kubevirt, source, "kubevirt_vmi_migration_data_remaining_bytes"),
                                   timeout=30, what="migration metrics")
            assert remaining > 0
        fault(kubevirt, migration, state, source)
        eventually(lambda: _ended(kubevirt, migration, fault), timeout=120,
                   what=f"fault {number} ({fault.__name__}) ended {migration}", interval=0.3)
        after = kubevirt.vmi("stayer")
        assert after["metadata"]["uid"] == vmi["metadata"]["uid"], f"fault {number}: a new VMI"
        assert after["status"]["nodeName"] == source and after["status"]["phase"] == "Running", after["status"]
        migration_state = after["status"]["migrationState"]
        assert migration_state["migrationUid"] == state["migrationUid"] and migration_state.get("failed"), \
            (number, fault.__name__, migration_state)
        if fault is _cancel:
            assert migration_state.get("abortStatus") == "Succeeded", migration_state
        before = last_counter(_console_on(kubevirt, vmi, source))
        eventually(lambda: last_counter(_console_on(kubevirt, vmi, source)) > before, timeout=30,
                   what=f"still counting on the source after fault {number} ({fault.__name__})")
        eventually(lambda: _ready_for_the_next(kubevirt, vmi, state), timeout=90,
                   what=f"cleaned up after fault {number}", interval=0.3)
    lines = _console_on(kubevirt, vmi, source)
    assert sum(markers.BOOTED in line for line in lines) == 1, "the guest rebooted on the source"
    _set_bandwidth(kubevirt, None)
    kubevirt.delete("virtualmachines", "stayer")
    eventually(lambda: kubevirt.vmi("stayer") is None, timeout=90, what="stayer removed")
