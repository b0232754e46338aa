"""The components serve /metrics over TLS with a certificate of the cluster CA: both
virt-controller replicas answer, each with its leading and ready status, and only the
leader reports migrations and VMIs; virt-handler answers with its ready status and its
migration and domain families; stopping a component closes its port."""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
import urllib.request
import uuid
from pathlib import Path

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from pki.cluster_ca import ensure_ca
from tests.wait import eventually
from virt_controller.__main__ import VirtController
from virt_handler.__main__ import VirtHandler


def _scrape(url: str, ca_pem: bytes) -> dict[str, list]:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        text = response.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_controller_replicas_serve_metrics_and_only_the_leader_reports(control_plane, cluster_ca) -> None:
    ca = cluster_ca
    timing = {"lease_duration": 2.0, "renew_deadline": 1.2, "retry_period": 0.2}
    replicas = [VirtController(control_plane.api_client(), "kubevirt", "kubevirt-py/virt-launcher:latest",
                               metrics_port=0, **timing) for _ in range(2)]
    for replica in replicas:
        replica.start()
    try:
        leader = eventually(lambda: next((r for r in replicas if r.leader.is_leader()), None), timeout=10)
        follower = next(r for r in replicas if r is not leader)
        assert leader.metrics is not None and follower.metrics is not None
        assert leader.metrics.url.startswith("https://127.0.0.1:")
        eventually(lambda: all(replica.ready() for replica in replicas), timeout=10, what="caches synced")
        led = _scrape(leader.metrics.url, ca.cert_pem)
        assert [s.value for s in led["kubevirt_vmi_migrations_in_pending_phase"]] == [0]
        assert "kubevirt_vmi_info" in led
        assert [s.value for s in led["kubevirt_virt_controller_leading_status"]] == [1]
        followed = _scrape(follower.metrics.url, ca.cert_pem)
        assert "kubevirt_vmi_migrations_in_pending_phase" not in followed
        assert "kubevirt_vmi_info" not in followed
        assert [s.value for s in followed["kubevirt_virt_controller_leading_status"]] == [0]
        assert [s.value for s in followed["kubevirt_virt_controller_ready_status"]] == [1]
        assert "process_cpu_seconds" in followed  # it answers, with its own process metrics
    finally:
        for replica in replicas:
            replica.stop()
    assert all(_closed(replica.metrics.port) for replica in replicas if replica.metrics is not None)


def test_handler_serves_its_migration_metrics(control_plane, kubevirt_api) -> None:
    node = f"metrics-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kubevirt_api).create_node({"metadata": {"name": node}})
    work = Path(tempfile.mkdtemp(prefix="kv-hm-", dir="/tmp"))
    handler = VirtHandler(control_plane.api_client(), node, work / "sockets", "127.0.0.1:0", metrics_port=0)
    handler.start()
    try:
        assert handler.metrics is not None
        eventually(handler.ready, timeout=10, what="the handler ready")
        scraped = _scrape(handler.metrics.url, ensure_ca(client.CoreV1Api(kubevirt_api)).cert_pem)
        # No migration leaves this node and no VMI runs: the families are described, without series.
        assert scraped["kubevirt_vmi_migration_data_remaining_bytes"] == []
        assert scraped["kubevirt_vmi_migration_memory_transfer_rate_bytes"] == []
        assert scraped["kubevirt_vmi_memory_resident_bytes"] == []
        assert [s.value for s in scraped["kubevirt_virt_handler_ready_status"]] == [1]
        port = handler.metrics.port
    finally:
        handler.stop()
        shutil.rmtree(work, ignore_errors=True)
    assert _closed(port)
