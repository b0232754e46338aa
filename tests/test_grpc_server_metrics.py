"""The gRPC server metrics interceptor: go-grpc-prometheus' families move for unary and
streaming calls with the status each ended with, stream messages are counted through
iterators and through the servicer context alike, and a method left uncounted keeps its
call counts but has no message series."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from grpc_support.server import service, start_server
from grpc_support.server_metrics import GrpcServerMetrics, method_path
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc

SERVICE = "kubevirt.nodeservice.v1.NodeService"


class Servicer(pb_grpc.NodeServiceServicer):
    """Each call shape of NodeService, answering as the request's name says."""

    async def Pause(self, request: pb.VMIRef, context: grpc.aio.ServicerContext) -> pb.LifecycleResponse:
        if request.name == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such VMI")
        if request.name == "broken":
            raise RuntimeError("a bug")
        if request.name == "busy":
            context.set_code(grpc.StatusCode.UNAVAILABLE)
        return pb.LifecycleResponse()

    async def Heartbeats(self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
                         ) -> AsyncIterator[pb.Heartbeat]:
        for number in range(3 if request.client != "forever" else 10**9):
            yield pb.Heartbeat(node_name="n", timestamp_unix_nano=number)
            if request.client == "forever":
                await asyncio.sleep(0.01)

    async def MigrationTunnel(self, request_iterator: AsyncIterator[pb.TunnelFrame],
                              context: grpc.aio.ServicerContext) -> AsyncIterator[pb.TunnelFrame]:
        async for frame in request_iterator:
            if frame.WhichOneof("payload") == "end_of_stream":
                break
            yield pb.TunnelFrame(data=frame.data)
        yield pb.TunnelFrame(end_of_stream=True)

    async def Console(self, request_iterator: AsyncIterator[pb.ConsoleInput],
                      context: grpc.aio.ServicerContext) -> None:
        # The reader/writer API, as virt-handler's console.
        while (message := await context.read()) is not grpc.aio.EOF:
            await context.write(pb.ConsoleOutput(data=message.data.upper()))


def _value(registry: CollectorRegistry, name: str, method: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"grpc_service": SERVICE, "grpc_method": method, **labels})


def _serving(metrics: GrpcServerMetrics, scenario: Callable[[pb_grpc.NodeServiceStub], Awaitable[None]]) -> None:
    async def run() -> None:
        server, port = await start_server(
            [service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server, Servicer())],
            tcp_address="127.0.0.1:0", interceptors=[metrics])
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await scenario(pb_grpc.NodeServiceStub(channel))
        finally:
            await server.stop(None)
    asyncio.run(run())


def test_unary_calls_are_counted_with_go_code_names() -> None:
    metrics = GrpcServerMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)

    async def calls(stub: pb_grpc.NodeServiceStub) -> None:
        for name, code in (("a", None), ("b", None), ("missing", grpc.StatusCode.NOT_FOUND),
                           ("broken", grpc.StatusCode.UNKNOWN), ("busy", grpc.StatusCode.UNAVAILABLE)):
            try:
                await stub.Pause(pb.VMIRef(name=name))
                assert code is None
            except grpc.aio.AioRpcError as error:
                assert error.code() == code

    _serving(metrics, calls)
    unary = {"grpc_type": "unary"}
    assert _value(registry, "grpc_server_started_total", "Pause", **unary) == 5
    assert _value(registry, "grpc_server_handled_total", "Pause", grpc_code="OK", **unary) == 2
    for code in ("NotFound", "Unknown", "Unavailable"):
        assert _value(registry, "grpc_server_handled_total", "Pause", grpc_code=code, **unary) == 1
    assert _value(registry, "grpc_server_handling_seconds_count", "Pause", **unary) == 5
    assert _value(registry, "grpc_server_msg_received_total", "Pause", **unary) == 5
    assert _value(registry, "grpc_server_msg_sent_total", "Pause", **unary) == 2  # answered with a message


def test_stream_messages_are_counted_through_iterators_and_the_context() -> None:
    metrics = GrpcServerMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)

    async def calls(stub: pb_grpc.NodeServiceStub) -> None:
        beats = [beat async for beat in stub.Heartbeats(pb.HeartbeatRequest(client="t"))]
        assert len(beats) == 3
        tunnel = stub.MigrationTunnel()
        for _ in range(4):
            await tunnel.write(pb.TunnelFrame(data=b"x"))
            await tunnel.read()
        await tunnel.write(pb.TunnelFrame(end_of_stream=True))
        assert (await tunnel.read()).WhichOneof("payload") == "end_of_stream"
        await tunnel.done_writing()
        console = stub.Console()
        for text in (b"a", b"b"):
            await console.write(pb.ConsoleInput(data=text))
            assert (await console.read()).data == text.upper()
        await console.done_writing()
        assert await console.read() is grpc.aio.EOF

    _serving(metrics, calls)
    server_stream, bidi = {"grpc_type": "server_stream"}, {"grpc_type": "bidi_stream"}
    assert _value(registry, "grpc_server_msg_received_total", "Heartbeats", **server_stream) == 1
    assert _value(registry, "grpc_server_msg_sent_total", "Heartbeats", **server_stream) == 3
    assert _value(registry, "grpc_server_handled_total", "Heartbeats", grpc_code="OK", **server_stream) == 1
    assert _value(registry, "grpc_server_msg_received_total", "MigrationTunnel", **bidi) == 5
    assert _value(registry, "grpc_server_msg_sent_total", "MigrationTunnel", **bidi) == 5
    assert _value(registry, "grpc_server_msg_received_total", "Console", **bidi) == 2
    assert _value(registry, "grpc_server_msg_sent_total", "Console", **bidi) == 2
    assert _value(registry, "grpc_server_handled_total", "Console", grpc_code="OK", **bidi) == 1


def test_a_cancelled_stream_is_handled_as_canceled() -> None:
    metrics = GrpcServerMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)

    async def calls(stub: pb_grpc.NodeServiceStub) -> None:
        call = stub.Heartbeats(pb.HeartbeatRequest(client="forever"))
        await call.read()
        call.cancel()
        # The server learns of the cancel asynchronously.
        for _ in range(200):
            if _value(registry, "grpc_server_handled_total", "Heartbeats", grpc_type="server_stream",
                      grpc_code="Canceled"):
                return
            await asyncio.sleep(0.01)

    _serving(metrics, calls)
    assert _value(registry, "grpc_server_handled_total", "Heartbeats", grpc_type="server_stream",
                  grpc_code="Canceled") == 1


@pytest.mark.parametrize("method", ["MigrationTunnel", "Console"])
def test_uncounted_methods_keep_call_counts_but_no_message_series(method: str) -> None:
    metrics = GrpcServerMetrics(uncounted_messages=[method_path(pb, "NodeService", method)])
    registry = CollectorRegistry()
    registry.register(metrics)

    async def calls(stub: pb_grpc.NodeServiceStub) -> None:
        call = getattr(stub, method)()
        if method == "MigrationTunnel":
            await call.write(pb.TunnelFrame(end_of_stream=True))
        else:
            await call.write(pb.ConsoleInput(data=b"x"))
            await call.read()
        await call.done_writing()
        while await call.read() is not grpc.aio.EOF:
            pass

    _serving(metrics, calls)
    bidi = {"grpc_type": "bidi_stream"}
    assert _value(registry, "grpc_server_started_total", method, **bidi) == 1
    assert _value(registry, "grpc_server_handled_total", method, grpc_code="OK", **bidi) == 1
    samples = {sample.name for family in text_string_to_metric_families(generate_latest(registry).decode())
               for sample in family.samples if sample.labels.get("grpc_method") == method}
    assert "grpc_server_handling_seconds_count" in samples
    assert not [name for name in samples if name.startswith("grpc_server_msg_")]


def test_method_path_is_the_path_interceptors_see() -> None:
    assert method_path(pb, "NodeService", "MigrationTunnel") == f"/{SERVICE}/MigrationTunnel"
