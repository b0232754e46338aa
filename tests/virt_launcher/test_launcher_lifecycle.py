"""A launcher with its own libvirtd: sync, pause, unpause, graceful shutdown that ends in
destroy when the guest ignores ACPI, bad specs refused, and libvirtd dying reported."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cluster.kubelet.oci_store import add_image
from tests.apiserver.wait import eventually
from virt_launcher.standalone import LauncherProcess, NotifyReceiver
from virt_handler.cmd_client import LauncherError

pytestmark = pytest.mark.slow


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kv-l-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def blank_store() -> Iterator[Path]:
    """A containerDisk whose disk boots nothing: SeaBIOS just waits, and ignores ACPI."""
    root = Path(tempfile.mkdtemp(prefix="kv-store-", dir="/tmp"))
    rootfs = root / "rootfs" / "disk"
    rootfs.mkdir(parents=True)
    with open(rootfs / "blank.img", "wb") as disk:
        disk.truncate(1024 * 1024)
    add_image(root / "store", "kubevirt-py/blank-disk:latest", root / "rootfs")
    yield root / "store"
    shutil.rmtree(root, ignore_errors=True)


def _vmi(name: str, **extra) -> dict:
    spec = {"domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                       "resources": {"requests": {"memory": "64Mi"}}},
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "root", "containerDisk": {"image": "kubevirt-py/blank-disk:latest"}},
                        {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#!/bin/sh\necho hi\n"}}]}
    spec.update(extra)
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}, "spec": spec}


def test_lifecycle_through_cmd_and_notify(work: Path, blank_store: Path) -> None:
    receiver = NotifyReceiver(work / "notify.sock")
    vmi = _vmi("life")
    launcher = LauncherProcess(work, vmi, blank_store, work / "notify.sock")

    async def drive() -> None:
        client = await launcher.client()
        bad = _vmi("life")
        bad["spec"]["domain"]["devices"]["gpus"] = [{"name": "g", "deviceName": "x"}]
        with pytest.raises(LauncherError, match="spec.domain.devices.gpus: is not supported"):
            await client.sync(bad)
        await client.sync(vmi)
        receiver.wait_for("Running", "Booted")
        assert (await client.get_domain())["status"]["status"] == "Running"
        stats = await client.get_domain_stats()
        assert stats["cpu"]["vcpus"] == 1
        await client.pause(vmi)
        receiver.wait_for("Paused", "User")
        await client.unpause(vmi)
        receiver.wait_for("Running", "Unpaused")
        await client.shutdown(vmi, grace_period_seconds=1)
        receiver.wait_for("Shutoff", "Destroyed", timeout=30)
        await client.close()

    try:
        asyncio.run(drive())
        assert launcher.wait_exit(30) == 0
        disks = work / "vmi" / "disks"
        assert (disks / "root.qcow2").exists() and (disks / "cloudinit.iso").exists()
    finally:
        launcher.stop()
        receiver.close()


def test_dying_libvirtd_is_reported_and_the_guest_does_not_linger(work: Path, blank_store: Path) -> None:
    receiver = NotifyReceiver(work / "notify.sock")
    vmi = _vmi("orphan")
    launcher = LauncherProcess(work, vmi, blank_store, work / "notify.sock")

    async def start() -> None:
        client = await launcher.client()
        await client.sync(vmi)
        await client.close()

    try:
        asyncio.run(start())
        receiver.wait_for("Running")
        pid = int((work / "vmi" / "libvirt" / "libvirtd.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        receiver.wait_for("Crashed", timeout=20)
        assert launcher.wait_exit(30) == 1
        marker = str(work / "vmi").encode()
        eventually(lambda: not any(
            marker in open(f"/proc/{p}/cmdline", "rb").read() for p in os.listdir("/proc")
            if p.isdigit() and os.path.exists(f"/proc/{p}/cmdline") and b"qemu-system" in open(
                f"/proc/{p}/cmdline", "rb").read()), timeout=10)
    finally:
        launcher.stop()
        receiver.close()


def test_dying_qemu_is_reported_as_a_failed_domain(work: Path, blank_store: Path) -> None:
    receiver = NotifyReceiver(work / "notify.sock")
    vmi = _vmi("qemudies")
    launcher = LauncherProcess(work, vmi, blank_store, work / "notify.sock")

    async def start() -> None:
        client = await launcher.client()
        await client.sync(vmi)
        await client.close()

    try:
        asyncio.run(start())
        receiver.wait_for("Running")
        marker = str(work / "vmi").encode()
        qemu = [int(p) for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/cmdline")
                and b"qemu-system" in (cmdline := open(f"/proc/{p}/cmdline", "rb").read()) and marker in cmdline]
        assert len(qemu) == 1
        os.kill(qemu[0], signal.SIGKILL)
        receiver.wait_for("Shutoff", timeout=20)
        assert receiver.states[-1] == ("Shutoff", "Failed")
        assert launcher.wait_exit(30) == 1
    finally:
        launcher.stop()
        receiver.close()
