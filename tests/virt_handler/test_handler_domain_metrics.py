"""virt-handler's domain metrics from a real launcher on libvirt's test driver: upstream's
kubevirt_vmi_* names and labels (name, namespace, node, the VMI's labels, and id/state,
interface, drive per device) with values that make sense; a launcher that does not answer
leaves the scrape on time and is not asked again while its request is pending; and the
launcher's report of a QEMU domain's bulk statistics, read the way it reads them."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from grpc_support.server import service, start_server
from grpc_support.versions import info_service
from kubevirt_api.pod_layout import launcher_socket
from kubevirt_grpc.cmd.v1 import cmd_pb2, cmd_pb2_grpc
from virt_handler.domain_metrics import DomainStatsCollector
from virt_handler.launcher_stats import LauncherStatsScraper
from virt_launcher.domain_stats import per_device
from virt_launcher.standalone import LauncherProcess, NotifyReceiver

NODE = "node-stats"
KIB = 1024
NETWORK = ("receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets", "receive_errors",
           "transmit_errors", "receive_packets_dropped", "transmit_packets_dropped")


def _vmi(name: str) -> dict:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}-{uuid.uuid4().hex[:6]}",
                         "labels": {"kubevirt.io/vm": name, "app.example.com/tier": "web"}},
            "spec": {"domain": {"cpu": {"cores": 2},
                                "devices": {"disks": [{"name": "scratch", "disk": {"bus": "virtio"}},
                                                      {"name": "cloudinit", "disk": {"bus": "virtio"}}]},
                                "resources": {"requests": {"memory": "64Mi"}}},
                     "volumes": [{"name": "scratch", "emptyDisk": {"capacity": "16Mi"}},
                                 {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#!/bin/sh\n"}}]},
            "status": {"phase": "Running", "nodeName": NODE}}


def _socket(sockets: Path, vmi: dict) -> Path:
    path = Path(launcher_socket(vmi["metadata"]["uid"], str(sockets)))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def running(sockdir: Path) -> Iterator[tuple[Path, dict]]:
    """A launcher on the test driver whose domain runs; yields the sockets directory and its VMI."""
    sockets = sockdir / "sockets"
    vmi = _vmi("stats")
    receiver = NotifyReceiver(sockdir / "notify.sock")
    launcher = LauncherProcess(sockdir, vmi, sockdir / "no-store", sockdir / "notify.sock",
                               cmd_socket=_socket(sockets, vmi), hypervisor="test")

    async def start() -> None:
        client = await launcher.client()
        try:
            await client.sync(vmi)
        finally:
            await client.close()

    try:
        asyncio.run(start())
        receiver.wait_for("Running")
        yield sockets, vmi
    finally:
        launcher.stop()
        receiver.close()


def _scrape(collector: DomainStatsCollector) -> dict[str, list[tuple[dict, float]]]:
    registry = CollectorRegistry()
    registry.register(collector)
    found: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_domain_stats_of_a_running_launcher(running) -> None:
    sockets, vmi = running
    scraper = LauncherStatsScraper(sockets)
    try:
        scraped = _scrape(DomainStatsCollector(NODE, lambda: [vmi], scraper))
    finally:
        scraper.close()
    identity = {"name": "stats", "namespace": "default", "node": NODE, "kubernetes_vmi_label_kubevirt_io_vm": "stats",
                "kubernetes_vmi_label_app_example_com_tier": "web"}

    def single(metric: str) -> float:
        [(labels, value)] = scraped[metric]
        assert labels == identity, metric
        return value

    assert single("kubevirt_vmi_cpu_usage_seconds_total") > 0
    assert single("kubevirt_vmi_memory_domain_bytes") == 64 * KIB * KIB
    assert 0 < single("kubevirt_vmi_memory_resident_bytes") <= 64 * KIB * KIB
    assert 0 < single("kubevirt_vmi_memory_unused_bytes") <= single("kubevirt_vmi_memory_available_bytes")
    assert single("kubevirt_vmi_memory_actual_balloon_bytes") == 64 * KIB * KIB
    assert single("kubevirt_vmi_memory_pgmajfault_total") >= 0

    vcpus = {(labels["id"], labels["state"]): value for labels, value in scraped["kubevirt_vmi_vcpu_seconds_total"]}
    assert set(vcpus) == {("0", "running"), ("1", "running")} and all(v > 0 for v in vcpus.values())

    for counter in NETWORK:
        [(labels, value)] = scraped[f"kubevirt_vmi_network_{counter}_total"]
        assert labels == {**identity, "interface": "default"} and value >= 0, counter
    traffic = {labels["type"]: value for labels, value in scraped["kubevirt_vmi_network_traffic_bytes_total"]}
    assert traffic == {"rx": scraped["kubevirt_vmi_network_receive_bytes_total"][0][1],
                       "tx": scraped["kubevirt_vmi_network_transmit_bytes_total"][0][1]}

    for counter in ("iops_read", "iops_write", "read_traffic_bytes", "write_traffic_bytes"):
        drives = {labels["drive"]: value for labels, value in scraped[f"kubevirt_vmi_storage_{counter}_total"]}
        assert set(drives) == {"scratch", "cloudinit"} and all(v >= 0 for v in drives.values()), counter


class _SlowLauncher(cmd_pb2_grpc.CmdServicer):
    """Answers GetDomainStats only once released; counts the requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.release = threading.Event()

    async def GetDomainStats(self, request, context):
        self.requests += 1
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return cmd_pb2.DomainStatsResponse(response=cmd_pb2.Response(success=True),
                                           domain_stats_json=json.dumps({"cpu": {"time": 5 * 10**9}}).encode())


@pytest.fixture
def slow(sockdir: Path) -> Iterator[tuple[Path, dict, _SlowLauncher]]:
    sockets = sockdir / "sockets"
    vmi = _vmi("slow")
    launcher = _SlowLauncher()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server, _ = asyncio.run_coroutine_threadsafe(start_server([
        service(cmd_pb2, "Cmd", cmd_pb2_grpc.add_CmdServicer_to_server, launcher),
        info_service("CmdInfo", [1], "slow-launcher")], unix_socket=_socket(sockets, vmi)), loop).result(10)
    try:
        yield sockets, vmi, launcher
    finally:
        launcher.release.set()
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_a_launcher_that_does_not_answer_neither_stalls_the_scrape_nor_is_asked_twice(running, slow) -> None:
    sockets, vmi = running
    _, stuck, launcher = slow
    scraper = LauncherStatsScraper(sockets, deadline=1.0)
    collector = DomainStatsCollector(NODE, lambda: [vmi, stuck], scraper)
    try:
        for _ in range(2):
            started = time.monotonic()
            scraped = _scrape(collector)
            assert time.monotonic() - started < 3.0
            assert [labels["name"] for labels, _ in scraped["kubevirt_vmi_cpu_usage_seconds_total"]] == ["stats"]
        assert launcher.requests == 1  # the second scrape left the pending request alone

        launcher.release.set()  # it answers at last: the next scrape asks again and gets it
        deadline = time.monotonic() + 10
        while launcher.requests < 2 and time.monotonic() < deadline:
            scraped = _scrape(collector)
        assert launcher.requests == 2
        names = {labels["name"]: value for labels, value in scraped["kubevirt_vmi_cpu_usage_seconds_total"]}
        assert names.keys() == {"stats", "slow"} and names["slow"] == 5
    finally:
        scraper.close()


def test_vmis_not_running_or_without_a_launcher_are_not_asked(slow) -> None:
    sockets, scheduled, launcher = slow
    scheduled["status"]["phase"] = "Scheduled"  # its launcher serves, but has no domain to report yet
    launcher.release.set()
    scraper = LauncherStatsScraper(sockets, deadline=1.0)
    try:
        scraped = _scrape(DomainStatsCollector(NODE, lambda: [scheduled, _vmi("gone")], scraper))
    finally:
        scraper.close()
    assert launcher.requests == 0
    assert not any(name.startswith("kubevirt_vmi_") for name in scraped)


def test_bulk_statistics_are_read_per_device() -> None:
    # What QEMU's libvirt answered virConnectGetAllDomainStats for a running one-disk guest
    # with a user-mode interface (which has no host-side counters, only a count).
    bulk = {"cpu.time": 348405000, "vcpu.current": 1, "vcpu.maximum": 2, "vcpu.0.state": 1,
            "vcpu.0.time": 150000000, "vcpu.0.wait": 0, "vcpu.0.delay": 114635079, "net.count": 1,
            "block.count": 1, "block.0.name": "vda", "block.0.rd.reqs": 1, "block.0.rd.bytes": 512,
            "block.0.rd.times": 48252, "block.0.fl.reqs": 0}
    assert per_device(bulk, "block") == [{"name": "vda", "rd_reqs": 1, "rd_bytes": 512, "rd_times": 48252,
                                          "fl_reqs": 0}]
    assert per_device(bulk, "net") == [{}]
    assert per_device(bulk, "vcpu", count_key="maximum") == [{"state": 1, "time": 150000000, "wait": 0,
                                                               "delay": 114635079}, {}]
