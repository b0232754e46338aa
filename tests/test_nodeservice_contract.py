"""NodeService v1: the calls the controller, virt-api and peer handlers make, and a
MigrationTunnel that carries bytes both ways at once."""

from __future__ import annotations

import asyncio
import hashlib
import os

import grpc

from grpc_support.server import service, start_server
from grpc_support.versions import info_service, negotiate
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc

CALLS = {"Heartbeats", "Console", "Pause", "Unpause", "SoftReboot", "Reset", "GuestOSInfo",
         "PrepareMigrationTarget", "MigrationTunnel"}


def test_nodeservice_has_every_call_and_streaming_shapes() -> None:
    methods = pb.DESCRIPTOR.services_by_name["NodeService"].methods_by_name
    assert set(methods) == CALLS
    assert methods["Heartbeats"].server_streaming and not methods["Heartbeats"].client_streaming
    for bidi in ("Console", "MigrationTunnel"):
        assert methods[bidi].server_streaming and methods[bidi].client_streaming


class ReversingTunnel(pb_grpc.NodeServiceServicer):
    """Sends its own bytes while still receiving, as QEMU's return path does."""

    def __init__(self) -> None:
        self.received = hashlib.sha256()
        self.opened: pb.TunnelOpen | None = None

    async def MigrationTunnel(self, request_iterator, context):
        first = await anext(request_iterator)
        self.opened = first.open
        async for frame in request_iterator:
            if frame.WhichOneof("payload") == "end_of_stream":
                break
            self.received.update(frame.data)
            yield pb.TunnelFrame(data=frame.data[::-1])
        yield pb.TunnelFrame(end_of_stream=True)

    async def Heartbeats(self, request, context):
        for i in range(3):
            yield pb.Heartbeat(node_name="node01", timestamp_unix_nano=i, schedulable=True, emulation="qemu")


def test_migration_tunnel_is_full_duplex() -> None:
    async def scenario() -> None:
        tunnel = ReversingTunnel()
        server, port = await start_server([
            service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server, tunnel),
            info_service("NodeServiceInfo", [1]),
        ], tcp_address="127.0.0.1:0")
        chunks = [os.urandom(64 * 1024) for _ in range(200)]
        sent = hashlib.sha256()
        back = hashlib.sha256()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                assert await negotiate(channel, "NodeServiceInfo", [1]) == 1
                stub = pb_grpc.NodeServiceStub(channel)
                call = stub.MigrationTunnel()
                await call.write(pb.TunnelFrame(open=pb.TunnelOpen(migration_uid="m1", channel=pb.QEMU)))
                received_before_done = 0
                for chunk in chunks:
                    sent.update(chunk)
                    await call.write(pb.TunnelFrame(data=chunk))
                    reply = await call.read()  # bytes flow back while we are still sending
                    back.update(reply.data[::-1])
                    received_before_done += 1
                await call.write(pb.TunnelFrame(end_of_stream=True))
                await call.done_writing()
                last = await call.read()
                assert last.WhichOneof("payload") == "end_of_stream"
                beats = [b async for b in stub.Heartbeats(pb.HeartbeatRequest(client="test"))]
        finally:
            await server.stop(None)
        assert received_before_done == len(chunks)
        assert tunnel.opened.migration_uid == "m1" and tunnel.opened.channel == pb.QEMU
        assert tunnel.received.digest() == sent.digest() == back.digest()
        assert [b.timestamp_unix_nano for b in beats] == [0, 1, 2]

    asyncio.run(scenario())
