"""virt-api and virtctl on the whole product: admission through the API server, every
virtctl verb end to end, and the serial console of a real guest."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import yaml
from kubernetes import client

from guest_image import markers
from tests.e2e.cluster import REPO, Kubevirt, last_counter, vm_manifest
from tests.wait import eventually

BOOT_TIMEOUT = 120.0


def virtctl(kubevirt: Kubevirt, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "virtctl", "--kubeconfig", str(kubevirt.state_dir / "kubeconfig"),
                           *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=REPO)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_admission_names_the_offending_field(kubevirt: Kubevirt) -> None:
    vm = vm_manifest("broken", "Always", test_driver=True)
    vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"].append({"name": "nowhere", "disk": {}})
    vm["spec"]["running"] = True
    with pytest.raises(client.ApiException) as refused:
        kubevirt.create("virtualmachines", vm)
    assert refused.value.status == 422
    body = refused.value.body if isinstance(refused.value.body, str) else refused.value.body.decode()
    assert "spec.template.spec.domain.devices.disks[2].name" in body and "spec.running" in body


def test_the_mutator_fills_in_the_pod_network(kubevirt: Kubevirt) -> None:
    vmi = dict(vm_manifest("defaults", "Always", test_driver=True)["spec"]["template"])
    vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
           "metadata": {"name": "defaults", **vmi["metadata"]}, "spec": vmi["spec"]}
    created = kubevirt.create("virtualmachineinstances", vmi)
    devices = created["spec"]["domain"]["devices"]
    assert devices["interfaces"] == [{"name": "default", "masquerade": {}}]
    assert created["spec"]["networks"] == [{"name": "default", "pod": {}}]
    kubevirt.delete("virtualmachineinstances", "defaults")


def test_start_stop_restart_and_migrate(kubevirt: Kubevirt) -> None:
    kubevirt.create("virtualmachines", vm_manifest("verbs", "Halted", test_driver=True))
    assert "was scheduled to start" in _ok(virtctl(kubevirt, "start", "verbs"))
    first = eventually(lambda: kubevirt.running_vmi("verbs"), timeout=60, what="started", interval=0.3)
    assert kubevirt.get("virtualmachines", "verbs")["spec"]["runStrategy"] == "Always"

    _ok(virtctl(kubevirt, "restart", "verbs"))
    eventually(lambda: (v := kubevirt.running_vmi("verbs")) is not None and v["metadata"]["uid"]
               != first["metadata"]["uid"], timeout=60, what="restarted with a new VMI", interval=0.3)

    _ok(virtctl(kubevirt, "migrate", "verbs"))
    migrations = kubevirt.custom.list_namespaced_custom_object("kubevirt.io", "v1", "default",
                                                               "virtualmachineinstancemigrations")["items"]
    assert [m["spec"]["vmiName"] for m in migrations] == ["verbs"]
    for migration in migrations:
        kubevirt.delete("virtualmachineinstancemigrations", migration["metadata"]["name"])

    assert "was scheduled to stop" in _ok(virtctl(kubevirt, "stop", "verbs"))
    eventually(lambda: kubevirt.vmi("verbs") is None, timeout=60, what="stopped", interval=0.3)
    assert kubevirt.get("virtualmachines", "verbs")["spec"]["runStrategy"] == "Halted"
    again = virtctl(kubevirt, "stop", "verbs")
    assert again.returncode == 1 and "Error stopping VirtualMachine verbs" in again.stderr
    missing = virtctl(kubevirt, "start", "no-such-vm")
    assert missing.returncode == 1 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    kubevirt.delete("virtualmachines", "verbs")


def test_create_vm_output_is_admitted(kubevirt: Kubevirt) -> None:
    manifest = _ok(virtctl(kubevirt, "create", "vm", "--name", "from-flags", "--run-strategy", "Halted",
                           "--memory", "128Mi", "--volume-containerdisk", "src:kubevirt-py/tiny-guest:latest"))
    kubevirt.create("virtualmachines", yaml.safe_load(manifest))
    eventually(lambda: (kubevirt.get("virtualmachines", "from-flags").get("status") or {}).get("printableStatus")
               == "Stopped", timeout=30, what="the VM Stopped")
    kubevirt.delete("virtualmachines", "from-flags")


class _Console:
    """`virtctl console` as a script uses it: stdin piped, the guest's output on stdout."""

    def __init__(self, kubevirt: Kubevirt, name: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "virtctl", "--kubeconfig", str(kubevirt.state_dir / "kubeconfig"), "console",
             name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            return self.process.wait(20)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.mark.slow
def test_console_pause_and_unpause_of_a_real_guest(kubevirt: Kubevirt) -> None:
    kubevirt.create("virtualmachines", vm_manifest("talker", "Always"))
    vmi = eventually(lambda: kubevirt.running_vmi("talker"), timeout=BOOT_TIMEOUT, what="Running", interval=0.3)
    eventually(lambda: last_counter(kubevirt.console(vmi)) > 0, timeout=BOOT_TIMEOUT, what="guest counting")
    console = _Console(kubevirt, "talker")
    try:
        eventually(lambda: len([x for x in console.lines if markers.COUNTER in x]) >= 2, timeout=30,
                   what="COUNTER lines through virtctl console", interval=0.2)
    finally:
        assert console.close() == 0

    _ok(virtctl(kubevirt, "pause", "vmi", "talker"))
    eventually(lambda: any(c["type"] == "Paused" and c["status"] == "True"
                           for c in kubevirt.vmi("talker")["status"].get("conditions") or []),
               timeout=30, what="Paused condition")
    frozen = last_counter(kubevirt.console(vmi))
    time.sleep(2.5)
    assert last_counter(kubevirt.console(vmi)) <= frozen + 1  # a line may have been in flight
    _ok(virtctl(kubevirt, "unpause", "vmi", "talker"))
    eventually(lambda: last_counter(kubevirt.console(vmi)) > frozen + 2, timeout=30, what="counting again")
    kubevirt.delete("virtualmachines", "talker")
    eventually(lambda: kubevirt.vmi("talker") is None, timeout=90, what="talker removed")
