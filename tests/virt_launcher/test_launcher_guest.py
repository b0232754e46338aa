"""Real TCG guests through the launcher: containerDisk + cloud-init, pause/unpause,
graceful ACPI shutdown, PVC bytes surviving a fresh launcher, ConfigDrive and kernelBoot."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from virt_launcher.standalone import LauncherProcess, NotifyReceiver

pytestmark = pytest.mark.slow

STORE = Path(__file__).resolve().parents[2] / "build" / "oci"
GUEST = "kubevirt-py/tiny-guest:latest"
KERNEL = "kubevirt-py/tiny-guest-kernel:latest"


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kv-g-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _vmi(name: str, volumes: list[dict], disks: list[dict] | None = None, **domain_extra) -> dict:
    domain = {"devices": {"disks": disks or []}, "resources": {"requests": {"memory": "128Mi"}}, **domain_extra}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": "default", "uid": f"0000-{name}"},
            "spec": {"domain": domain, "terminationGracePeriodSeconds": 30, "volumes": volumes}}


def _counters(serial: str) -> list[int]:
    return [int(n) for n in re.findall(r"KUBEVIRT-PY-GUEST COUNTER (\d+)", serial)]


def _run(launcher: LauncherProcess, vmi: dict):
    async def sync():
        client = await launcher.client()
        await client.sync(vmi)
        return client
    return asyncio.run(sync())


def _call(coroutine) -> None:
    asyncio.run(coroutine)


def test_container_disk_cloud_init_pause_and_graceful_shutdown(work: Path) -> None:
    marker = f"hello-from-user-data-{time.time_ns()}"
    vmi = _vmi("guest", [
        {"name": "root", "containerDisk": {"image": GUEST}},
        {"name": "cloudinit", "cloudInitNoCloud": {"userData": f"#!/bin/sh\necho {marker}\n"}}])
    receiver = NotifyReceiver(work / "notify.sock")
    launcher = LauncherProcess(work, vmi, STORE, work / "notify.sock")
    try:
        _run(launcher, vmi)
        serial = launcher.wait_serial("KUBEVIRT-PY-GUEST COUNTER 2")
        assert marker in serial and "KUBEVIRT-PY-GUEST USERDATA DONE 0" in serial
        assert "KUBEVIRT-PY-GUEST DATASOURCE cidata guest.default" in serial

        async def pause_resume_shutdown() -> None:
            client = await launcher.client()
            await client.pause(vmi)
            receiver.wait_for("Paused", "User")
            frozen = _counters(launcher.serial())[-1]
            await asyncio.sleep(2.5)
            assert _counters(launcher.serial())[-1] == frozen  # a paused guest does not count
            await client.unpause(vmi)
            launcher.wait_serial(f"KUBEVIRT-PY-GUEST COUNTER {frozen + 2}", timeout=30)
            started = time.monotonic()
            await client.shutdown(vmi, grace_period_seconds=30)
            receiver.wait_for("Shutoff", timeout=30)
            assert time.monotonic() - started < 30
            await client.close()

        asyncio.run(pause_resume_shutdown())
        assert ("Shutoff", "Shutdown") in receiver.states  # the guest powered off; nothing was destroyed
        assert "KUBEVIRT-PY-GUEST POWEROFF" in launcher.serial()
        assert launcher.wait_exit(30) == 0
    finally:
        launcher.stop()
        receiver.close()


def test_pvc_bytes_survive_shutdown_and_a_fresh_launcher(work: Path) -> None:
    claim = work / "claim"
    claim.mkdir()
    context = {"claims": {"data": {"path": str(claim), "capacityBytes": 16 * 1024 * 1024}}}
    token = f"persisted-{time.time_ns()}"
    disks = [{"name": "root", "disk": {"bus": "virtio"}}, {"name": "data", "disk": {"bus": "virtio"}},
             {"name": "cloudinit", "disk": {"bus": "virtio"}}]

    def boot(run: int, script: str) -> str:
        run_dir = work / f"run{run}"
        run_dir.mkdir()
        vmi = _vmi("pvc", [{"name": "root", "containerDisk": {"image": GUEST}},
                           {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                           {"name": "cloudinit", "cloudInitNoCloud": {"userData": script}}], disks)
        receiver = NotifyReceiver(run_dir / "notify.sock")
        launcher = LauncherProcess(run_dir, vmi, STORE, run_dir / "notify.sock", context)
        try:
            _run(launcher, vmi)
            serial = launcher.wait_serial("KUBEVIRT-PY-GUEST USERDATA DONE")

            async def shutdown() -> None:
                client = await launcher.client()
                await client.shutdown(vmi, grace_period_seconds=30)
                await client.close()

            asyncio.run(shutdown())
            receiver.wait_for("Shutoff", timeout=40)
            assert launcher.wait_exit(30) == 0
            return serial
        finally:
            launcher.stop()
            receiver.close()

    first = boot(1, f"#!/bin/sh\nprintf '{token}' | dd of=/dev/vdb bs=512 seek=8 conv=sync,notrunc\nsync\n")
    assert "USERDATA DONE 0" in first
    assert token.encode() in (claim / "disk.img").read_bytes()
    second = boot(2, "#!/bin/sh\necho \"read-back: $(dd if=/dev/vdb bs=512 skip=8 count=1 2>/dev/null "
                     "| tr -d '\\000')\"\n")
    assert f"read-back: {token}" in second


def test_config_drive_with_kernel_boot(work: Path) -> None:
    vmi = _vmi("kboot", [{"name": "configdrive", "cloudInitConfigDrive": {"userData": "#!/bin/sh\necho cd-ok\n"}}],
               firmware={"kernelBoot": {"kernelArgs": "console=ttyS0", "container": {
                   "image": KERNEL, "kernelPath": "/boot/vmlinuz", "initrdPath": "/boot/initramfs.img"}}})
    receiver = NotifyReceiver(work / "notify.sock")
    launcher = LauncherProcess(work, vmi, STORE, work / "notify.sock")
    try:
        _run(launcher, vmi)
        serial = launcher.wait_serial("KUBEVIRT-PY-GUEST USERDATA DONE")
        assert "KUBEVIRT-PY-GUEST DATASOURCE config-2 0000-kboot" in serial and "cd-ok" in serial
    finally:
        launcher.stop()
        receiver.close()
