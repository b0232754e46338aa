"""virt-handler's /metrics carries its runtime metrics: NodeService calls per method
(go-grpc-prometheus' names), its VMI queues (kubevirt_workqueue_*) and its Kubernetes
client's requests (kubevirt_rest_client_*); MigrationTunnel's messages are not counted."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import grpc
from kubernetes import client

from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from pki.cluster_ca import channel_credentials, ensure_ca
from tests.metrics_text import scrape
from virt_handler.__main__ import VirtHandler

SERVICE = "kubevirt.nodeservice.v1.NodeService"


def _value(samples: list[tuple[str, dict[str, str], float]], metric: str, /, **labels: str) -> float | None:
    return next((value for sample, found, value in samples if sample == metric and found == labels), None)


def test_handler_exports_grpc_workqueue_and_rest_client_metrics(control_plane, kubevirt_api) -> None:
    node = f"runtime-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kubevirt_api).create_node({"metadata": {"name": node}})
    work = Path(tempfile.mkdtemp(prefix="kv-hr-", dir="/tmp"))
    ca = ensure_ca(client.CoreV1Api(kubevirt_api))
    handler = VirtHandler(control_plane.api_client(), node, work / "sockets", "127.0.0.1:0", metrics_port=0)
    handler.start()

    async def calls() -> None:
        async with grpc.aio.secure_channel(f"localhost:{handler.port}",
                                           channel_credentials(ca, "virt-api")) as channel:
            stub = pb_grpc.NodeServiceStub(channel)
            missing = await stub.Pause(pb.VMIRef(namespace="default", name="x", uid="nope"))
            assert not missing.success
            beats = stub.Heartbeats(pb.HeartbeatRequest(client="test"))
            assert (await beats.read()).node_name == node
            beats.cancel()

    try:
        asyncio.run(calls())
        assert handler.metrics is not None
        unary = {"grpc_service": SERVICE, "grpc_method": "Pause", "grpc_type": "unary"}
        stream = {"grpc_service": SERVICE, "grpc_method": "Heartbeats", "grpc_type": "server_stream"}
        samples = scrape(handler.metrics.url, ca.cert_pem)
        assert _value(samples, "grpc_server_started_total", **unary) == 1
        assert _value(samples, "grpc_server_handled_total", grpc_code="OK", **unary) == 1
        assert _value(samples, "grpc_server_msg_received_total", **unary) == 1
        assert _value(samples, "grpc_server_started_total", **stream) == 1
        assert (_value(samples, "grpc_server_msg_sent_total", **stream) or 0) >= 1
        for queue in ("handler-vmi", "handler-migration-target"):
            assert _value(samples, "kubevirt_workqueue_depth", name=queue) == 0, queue
            assert _value(samples, "kubevirt_workqueue_adds_total", name=queue) is not None, queue
        watches = [value for name, labels, value in samples if name == "kubevirt_rest_client_requests_total"
                   and labels["resource"] == "virtualmachineinstances" and labels["verb"] in ("LIST", "WATCH")]
        assert sum(watches) >= 2  # its two VMI informers listed
    finally:
        handler.stop()
        shutil.rmtree(work, ignore_errors=True)
