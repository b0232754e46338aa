"""A launcher with its own libvirtd: sync, pause, unpause, graceful shutdown that ends in
destroy when the guest ignores ACPI, bad specs refused, and libvirtd dying reported."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from oci_layout.store import add_image
from tests.wait import eventually
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


@contextmanager
def running_guest(work: Path, store: Path, name: str) -> Iterator[tuple[LauncherProcess, NotifyReceiver]]:
    """A launcher whose domain has reached Running; stopped and cleaned up afterwards."""
    receiver = NotifyReceiver(work / "notify.sock")
    vmi = _vmi(name)
    launcher = LauncherProcess(work, vmi, store, work / "notify.sock")

    async def start() -> None:
        client = await launcher.client()
        await client.sync(vmi)
        await client.close()

    try:
        asyncio.run(start())
        receiver.wait_for("Running")
        yield launcher, receiver
    finally:
        launcher.stop()
        receiver.close()


def _qemu_pids(work: Path) -> list[int]:
    """QEMU processes whose command line names this launcher's directory."""
    marker = str(work / "vmi").encode()
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read() if entry.isdigit() else b""
        except OSError:
            continue
        if b"qemu-system" in cmdline and marker in cmdline:
            found.append(int(entry))
    return found


def test_dying_libvirtd_is_reported_and_the_guest_does_not_linger(work: Path, blank_store: Path) -> None:
    with running_guest(work, blank_store, "orphan") as (launcher, receiver):
        pid = int((work / "vmi" / "libvirt" / "libvirtd.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        receiver.wait_for("Crashed", timeout=20)
        assert launcher.wait_exit(30) == 1
        eventually(lambda: not _qemu_pids(work), timeout=10)


def test_dying_qemu_is_reported_as_a_failed_domain(work: Path, blank_store: Path) -> None:
    with running_guest(work, blank_store, "qemudies") as (launcher, receiver):
        qemu = _qemu_pids(work)
        assert len(qemu) == 1
        os.kill(qemu[0], signal.SIGKILL)
        receiver.wait_for("Shutoff", timeout=20)
        assert receiver.states[-1] == ("Shutoff", "Failed")
        assert launcher.wait_exit(30) == 1
