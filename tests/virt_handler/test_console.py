"""NodeService.Console against a stand-in serial socket (no guest): round trip, errors,
takeover by a newer session, clean ends from either side, and bounded buffering."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from grpc_support.server import service, start_server
from kubevirt_api.pod_layout import serial_socket
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from pki import new_ca
from pki.cluster_ca import channel_credentials, server_credentials
from virt_handler.node_service import NodeServiceServicer

UID = "vmi-uid-1"
REF = pb.VMIRef(namespace="default", name="vmi", uid=UID)
Guest = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo_upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Like a guest's getty: greets, then answers what it is sent."""
    writer.write(b"login: ")
    await writer.drain()
    while data := await reader.read(1024):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


class Node:
    def __init__(self, sockets: Path, servicer: NodeServiceServicer, stub: pb_grpc.NodeServiceStub) -> None:
        self.sockets = sockets
        self.servicer = servicer
        self.stub = stub
        self.guest_connections = 0

    async def serve_guest(self, guest: Guest) -> asyncio.Server:
        path = Path(serial_socket(UID, str(self.sockets)))
        path.parent.mkdir(parents=True, exist_ok=True)

        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.guest_connections += 1
            await guest(reader, writer)

        return await asyncio.start_unix_server(counted, str(path))


@contextlib.asynccontextmanager
async def node(sockdir: Path) -> AsyncIterator[Node]:
    ca = new_ca("test-console-ca")
    servicer = NodeServiceServicer("node1", "qemu", sockdir, lambda: 0)
    server, port = await start_server(
        [service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server, servicer)],
        tcp_address="127.0.0.1:0", credentials=server_credentials(ca, "node1"))
    channel = grpc.aio.secure_channel(f"127.0.0.1:{port}", channel_credentials(ca, "virt-api"),
                                      options=[("grpc.ssl_target_name_override", "node1")])
    try:
        yield Node(sockdir, servicer, pb_grpc.NodeServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(None)


async def attach(stub: pb_grpc.NodeServiceStub) -> grpc.aio.StreamStreamCall:
    call = stub.Console()
    await call.write(pb.ConsoleInput(open=REF))
    first = await call.read()
    assert first == pb.ConsoleOutput(), "the handler acknowledges the attach with an empty message"
    return call


async def read_until(call: grpc.aio.StreamStreamCall, text: bytes) -> bytes:
    seen = b""
    while text not in seen:
        message = await asyncio.wait_for(call.read(), 5)
        assert message is not grpc.aio.EOF, f"stream ended before {text!r}; got {seen!r}"
        seen += message.data
    return seen


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_bytes_flow_both_ways(sockdir: Path) -> None:
    async def scenario() -> None:
        async with node(sockdir) as n:
            guest = await n.serve_guest(echo_upper)
            call = await attach(n.stub)
            await read_until(call, b"login: ")
            await call.write(pb.ConsoleInput(data=b"root\n"))
            await read_until(call, b"ROOT\n")
            await call.done_writing()  # the client leaves: the session ends cleanly
            assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK
            await wait_until(lambda: len(n.servicer.consoles.sessions) == 0)
            guest.close()

    asyncio.run(scenario())


def test_missing_console_and_bad_opening_are_rejected(sockdir: Path) -> None:
    async def scenario() -> None:
        async with node(sockdir) as n:
            call = n.stub.Console()
            await call.write(pb.ConsoleInput(open=REF))
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await call.read()
            assert missing.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "default/vmi has no serial console on node node1" in missing.value.details()

            call = n.stub.Console()
            await call.write(pb.ConsoleInput(data=b"hello"))
            with pytest.raises(grpc.aio.AioRpcError) as unopened:
                await call.read()
            assert unopened.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(scenario())


def test_a_newer_session_takes_over(sockdir: Path) -> None:
    async def scenario() -> None:
        async with node(sockdir) as n:
            guest = await n.serve_guest(echo_upper)
            first = await attach(n.stub)
            await read_until(first, b"login: ")
            second = await attach(n.stub)
            with pytest.raises(grpc.aio.AioRpcError) as taken:
                while await first.read() is not grpc.aio.EOF:
                    pass
            assert taken.value.code() == grpc.StatusCode.ABORTED and "took over" in taken.value.details()
            await read_until(second, b"login: ")
            await second.write(pb.ConsoleInput(data=b"still here"))
            await read_until(second, b"STILL HERE")
            assert len(n.servicer.consoles.sessions) == 1 and n.guest_connections == 2
            second.cancel()
            await wait_until(lambda: len(n.servicer.consoles.sessions) == 0)
            guest.close()

    asyncio.run(scenario())


def test_guest_hanging_up_ends_the_stream(sockdir: Path) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye\n")
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        async with node(sockdir) as n:
            guest = await n.serve_guest(hang_up)
            call = await attach(n.stub)
            await read_until(call, b"bye\n")
            assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK
            guest.close()

    asyncio.run(scenario())


def test_cancelled_client_closes_the_guest_socket(sockdir: Path) -> None:
    closed = asyncio.Event()

    async def watch_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")
        await writer.drain()
        await reader.read()  # EOF once the handler lets go
        closed.set()

    async def scenario() -> None:
        async with node(sockdir) as n:
            guest = await n.serve_guest(watch_close)
            call = await attach(n.stub)
            await read_until(call, b"hi")
            call.cancel()
            await asyncio.wait_for(closed.wait(), 5)
            await wait_until(lambda: len(n.servicer.consoles.sessions) == 0)
            guest.close()

    asyncio.run(scenario())


def test_a_chatty_guest_waits_for_a_slow_client(sockdir: Path) -> None:
    total = 64 * 1024 * 1024
    written = 0

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        chunk = bytes(range(256)) * 256
        while written < total:
            writer.write(chunk)
            await writer.drain()  # blocks once the handler stops reading
            written += len(chunk)
        writer.close()

    async def scenario() -> None:
        async with node(sockdir) as n:
            guest = await n.serve_guest(flood)
            call = await attach(n.stub)
            await asyncio.sleep(1.5)  # the client reads nothing meanwhile
            stalled_at = written
            assert stalled_at < total // 4, f"the guest wrote {stalled_at} bytes nobody read"
            received = 0
            while (message := await asyncio.wait_for(call.read(), 10)) is not grpc.aio.EOF:
                received += len(message.data)
            assert received == total
            guest.close()

    asyncio.run(scenario())
