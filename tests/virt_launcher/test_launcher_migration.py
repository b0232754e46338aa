"""Live migration between two launchers, each in its own mount namespace (as two pods on two
nodes: the same path strings, different files), with a plain unix-socket relay standing in
for the two virt-handlers: a cancelled migration leaves the guest on the source, the next
one moves it to the target, where its serial counter goes on without a new boot and what it
wrote to its emptyDisk (a file only the source pod had) reads back from the target's copy."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guest_image.markers import BOOTED, COUNTER
from kubevirt_api.pod_layout import MIGRATION_CHANNELS, migration_socket_name
from kubevirt_grpc.cmd.v1 import cmd_pb2
from tests import disk_mark
from virt_handler.cmd_client import LauncherClient, LauncherError
from virt_launcher.migration import UnixRelay
from virt_launcher.standalone import LauncherProcess, NotifyReceiver

pytestmark = pytest.mark.slow

STORE = Path(__file__).resolve().parents[2] / "build" / "oci"
GUEST = "kubevirt-py/tiny-guest:latest"
DISK_MARK = "written-before-the-move"
VMI = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
       "metadata": {"name": "mover", "namespace": "default", "uid": "0000-mover"},
       "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "96Mi"}}},
                "terminationGracePeriodSeconds": 5,
                "volumes": [{"name": "root", "containerDisk": {"image": GUEST}},
                            disk_mark.volume(),
                            {"name": "cloudinit", "cloudInitNoCloud": {"userData": disk_mark.user_data(DISK_MARK)}}]}}


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kv-mig-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class HandlerRelay:
    """Both handlers in one: each channel's socket in the source's directory leads to the same
    name in the target's (QEMU's listener, the target launcher's libvirt)."""

    def __init__(self, source_dir: Path, target_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.relays = [UnixRelay(source_dir / migration_socket_name(c), target_dir / migration_socket_name(c))
                       for c in MIGRATION_CHANNELS]
        for relay in self.relays:
            asyncio.run_coroutine_threadsafe(relay.start(), self.loop).result(10)

    def close(self) -> None:
        for relay in self.relays:
            asyncio.run_coroutine_threadsafe(relay.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def _counters(serial: str) -> list[int]:
    return [int(n) for n in re.findall(rf"{COUNTER} (\d+)", serial)]


async def _until(probe: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


async def _migration(client: LauncherClient) -> dict[str, Any]:
    return (await client.get_domain_stats()).get("migration") or {}


def test_cancelled_then_completed_live_migration(work: Path) -> None:
    source_dir, target_dir, pod = work / "source", work / "target", work / "pod"
    source_dir.mkdir()
    target_dir.mkdir()
    source_events = NotifyReceiver(source_dir / "notify.sock")
    target_events = NotifyReceiver(target_dir / "notify.sock")
    source = LauncherProcess(source_dir, VMI, STORE, source_dir / "notify.sock", pod_root=pod)
    target = LauncherProcess(target_dir, VMI, STORE, target_dir / "notify.sock", pod_root=pod)
    relay = HandlerRelay(source_dir, target_dir)
    # The source handler's proxy, as the source launcher sees it.
    proxy = str(pod / migration_socket_name("libvirt"))

    async def scenario() -> None:
        src, dst = await source.client(), await target.client()
        await src.sync(VMI)
        await dst.sync_migration_target(VMI)
        await asyncio.to_thread(source.wait_serial, disk_mark.LINE.format(DISK_MARK))
        await asyncio.to_thread(source.wait_serial, f"{COUNTER} 2")
        with pytest.raises(LauncherError, match="waits for an incoming migration"):
            await dst.sync(VMI)

        # 1 MiB/s keeps the migration running long enough to watch it and cancel it.
        await src.migrate(VMI, cmd_pb2.MigrationOptions(bandwidth_bytes_per_second=1 << 20), proxy)
        with pytest.raises(LauncherError, match="already in progress"):
            await src.migrate(VMI, cmd_pb2.MigrationOptions(), proxy)
        progress = await _until(lambda: _progress(src), "migration progress")
        assert progress["dataRemainingBytes"] > 0 and progress["dataTotalBytes"] > 0
        await src.cancel_migration(VMI)
        failed = await _until(lambda: _ended(src), "cancelled migration to end")
        assert failed["failed"] and not failed["completed"] and failed["abortStatus"] == "Succeeded", failed
        assert "cancelled" in failed["failureReason"]
        assert (await src.get_domain())["status"]["status"] == "Running"
        still = _counters(source.serial())[-1]
        await asyncio.to_thread(source.wait_serial, f"{COUNTER} {still + 2}", 30)
        with pytest.raises(LauncherError, match="no migrated domain"):
            await dst.finalize_migration(VMI)

        await src.migrate(VMI, cmd_pb2.MigrationOptions(bandwidth_bytes_per_second=256 << 20), proxy)
        assert await asyncio.to_thread(source.wait_exit, 60) == 0
        await src.close()
        await dst.finalize_migration(VMI)
        last = _counters(source.serial())[-1]
        serial = await asyncio.to_thread(target.wait_serial, f"{COUNTER} {last + 2}", 30)
        assert BOOTED not in serial and _counters(serial)[0] in (last, last + 1), serial[:500]
        # Read from the target's disk, after the switchover: the copy carried the write.
        after = serial[serial.index(f"{COUNTER} {last + 1}"):]
        assert disk_mark.shows(after, DISK_MARK), after[:500]
        assert (await dst.get_domain())["status"] == {"status": "Running", "reason": "Migrated"}
        await dst.close()

    async def _progress(client: LauncherClient) -> dict[str, Any] | None:
        progress = (await _migration(client)).get("progress") or {}
        return progress if progress.get("dataProcessedBytes") else None

    async def _ended(client: LauncherClient) -> dict[str, Any] | None:
        state = await _migration(client)
        return state if state.get("endTimestamp") else None

    try:
        started = time.monotonic()
        asyncio.run(scenario())
        print(f"migration scenario: {time.monotonic() - started:.1f}s")
        source_events.wait_for("Shutoff", "Migrated", timeout=5)
        target_events.wait_for("Running", "Migrated", timeout=5)
        # Nothing of the incoming domain reached the target's handler before it was finalized.
        assert target_events.states[0] == ("Running", "Migrated"), target_events.states
        # The source told its handler how both migrations went, progress included.
        reports = [status["status"]["migration"] for status in source_events.statuses]
        assert any(not r["endTimestamp"] for r in reports), reports  # while running
        assert reports[-1]["completed"] and not reports[-1]["failed"], reports[-1]
        assert reports[-1]["copiedDisks"] == ["vda", "vdb"], reports[-1]  # root overlay, emptyDisk
        progress = reports[-1]["progress"]
        print(f"moved {progress['dataProcessedBytes'] / 2**20:.1f} MiB, downtime "
              f"{progress.get('downtimeMilliseconds')} ms")
    except BaseException:
        print(f"source launcher:\n{source.output()}\ntarget launcher:\n{target.output()}")
        raise
    finally:
        source.stop()
        target.stop()
        relay.close()
        source_events.close()
        target_events.close()
