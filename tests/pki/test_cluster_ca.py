"""The cluster CA in a Secret, and NodeService refusing clients without a valid certificate."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
from kubernetes import client

from grpc_support.server import service, start_server
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from pki import new_ca
from pki.cluster_ca import channel_credentials, ensure_ca, server_credentials


def test_the_first_starter_creates_the_ca_and_everyone_shares_it(control_plane) -> None:
    results = []

    def bootstrap() -> None:
        results.append(ensure_ca(client.CoreV1Api(control_plane.api_client()), name="race-ca").cert_pem)

    threads = [threading.Thread(target=bootstrap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 4 and len(set(results)) == 1
    again = ensure_ca(client.CoreV1Api(control_plane.api_client()), name="race-ca")
    assert again.cert_pem == results[0]


class Beats(pb_grpc.NodeServiceServicer):
    async def Heartbeats(self, request, context):
        yield pb.Heartbeat(node_name="node01", schedulable=True, emulation="qemu")


def test_node_service_requires_a_client_certificate_from_the_cluster_ca(control_plane) -> None:
    ca = ensure_ca(client.CoreV1Api(control_plane.api_client()))

    async def scenario() -> None:
        server, port = await start_server([service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server,
                                                   Beats())], tcp_address="127.0.0.1:0",
                                          credentials=server_credentials(ca, "node01"))
        target = f"localhost:{port}"
        try:
            async with grpc.aio.secure_channel(target, channel_credentials(ca, "virt-controller")) as channel:
                beats = [b async for b in pb_grpc.NodeServiceStub(channel).Heartbeats(pb.HeartbeatRequest())]
                assert beats[0].node_name == "node01"
            anonymous = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem)
            stranger = channel_credentials(new_ca("someone-else"), "intruder")
            for credentials in (anonymous, stranger):
                async with grpc.aio.secure_channel(target, credentials) as channel:
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        async for _ in pb_grpc.NodeServiceStub(channel).Heartbeats(pb.HeartbeatRequest(),
                                                                                   timeout=5):
                            pass
                    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await server.stop(None)

    asyncio.run(scenario())
