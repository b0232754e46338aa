"""MigrationTunnel between two handlers in one process (no VMs): a SourceTunnel listening on a
unix socket, a NodeServiceServicer on a loopback gRPC server as the target handler, and a
stand-in unix server as the target launcher. Bytes both ways, half-close, refusals, peers
going away mid-stream, counters, bounded buffering."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from grpc_support.server import service, start_server
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from pki import new_ca
from pki.cluster_ca import channel_credentials, server_credentials
from virt_handler.migration_tunnel import (CHUNK, SourceTunnel, TargetRegistry, TunnelStats, _data_frame, _decode,
                                           tunnel_channel)
from virt_handler.node_service import NodeServiceServicer

MIGRATION = "migration-uid-1"
VMI = pb.VMIRef(namespace="default", name="vmi", uid="vmi-uid-1")
MIB = 1024 * 1024
WAIT = 10.0
Launcher = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Handlers:
    sockdir: Path
    target: NodeServiceServicer
    server: grpc.aio.Server
    channel: grpc.aio.Channel
    stub: pb_grpc.NodeServiceStub
    source_stats: TunnelStats

    @property
    def registry(self) -> TargetRegistry:
        return self.target.migration_targets

    def source(self, channel: int = pb.QEMU, migration: str = MIGRATION) -> SourceTunnel:
        path = self.sockdir / "source" / f"{migration}-{channel}.sock"
        return SourceTunnel(self.channel, migration, channel, path, vmi=VMI, stats=self.source_stats)

    async def launcher(self, handle: Launcher, channel: int = pb.QEMU, migration: str = MIGRATION
                       ) -> asyncio.Server:
        """A stand-in for the target launcher's socket, registered for the migration's channel."""
        path = self.sockdir / "target" / f"{migration}-{channel}.sock"
        path.parent.mkdir(exist_ok=True)
        server = await asyncio.start_unix_server(handle, str(path), limit=MIB)
        self.registry.register(migration, channel, path, vmi_uid=VMI.uid)
        return server


@contextlib.asynccontextmanager
async def handlers(sockdir: Path, mutual_tls: bool = False) -> AsyncIterator[Handlers]:
    servicer = NodeServiceServicer("target-node", "qemu", sockdir, lambda: 0)
    services = [service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server, servicer)]
    if mutual_tls:
        ca = new_ca("test-tunnel-ca")
        server, port = await start_server(services, tcp_address="127.0.0.1:0",
                                          credentials=server_credentials(ca, "target-node"))
        channel = tunnel_channel(f"127.0.0.1:{port}", channel_credentials(ca, "source-node"), "target-node")
    else:
        server, port = await start_server(services, tcp_address="127.0.0.1:0")
        channel = tunnel_channel(f"127.0.0.1:{port}", None)
    try:
        yield Handlers(sockdir, servicer, server, channel, pb_grpc.NodeServiceStub(channel), TunnelStats())
    finally:
        await channel.close()
        await server.stop(None)


async def connect(tunnel: SourceTunnel) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """As the source launcher's QEMU or libvirtd would."""
    return await asyncio.wait_for(asyncio.open_unix_connection(str(tunnel.path), limit=MIB), WAIT)


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def send_all(writer: asyncio.StreamWriter, data: bytes, piece: int = 100_000) -> None:
    for at in range(0, len(data), piece):
        writer.write(data[at:at + piece])
        await writer.drain()
    writer.write_eof()
    await writer.drain()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    seen = bytearray()
    while chunk := await reader.read(MIB):
        seen += chunk
    return bytes(seen)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftover_tasks(before: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t not in before and t is not asyncio.current_task() and not t.done()]


@pytest.mark.parametrize("mutual_tls", [False, True], ids=["insecure", "mutual-tls"])
def test_random_bytes_both_ways_arrive_intact(sockdir: Path, mutual_tls: bool) -> None:
    """8 MiB each way at once (QEMU's return path), each direction half-closing on its own."""
    up, down = os.urandom(8 * MIB), os.urandom(8 * MIB)

    async def scenario() -> None:
        got_up: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def target_launcher(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sending = asyncio.create_task(send_all(writer, down))
            got_up.set_result(await read_all(reader))
            await sending
            writer.close()

        async with handlers(sockdir, mutual_tls) as h:
            launcher = await h.launcher(target_launcher)
            async with h.source() as tunnel:
                reader, writer = await connect(tunnel)
                sending = asyncio.create_task(send_all(writer, up))
                received = await asyncio.wait_for(read_all(reader), 60)
                await asyncio.wait_for(sending, WAIT)
                assert digest(await asyncio.wait_for(got_up, WAIT)) == digest(up)
                assert digest(received) == digest(down)
                writer.close()
                await wait_until(lambda: tunnel.active == 0 and h.target.tunnels.active == 0)
                source = tunnel.counters
                target = h.target.tunnels.stats.get(MIGRATION, pb.QEMU)
                assert target is not None
                assert (source.sent, source.received) == (len(up), len(down))
                assert (target.sent, target.received) == (len(down), len(up))
                assert (source.connections, target.connections) == (1, 1)
                assert (source.failures, target.failures) == (0, 0), (source.last_error, target.last_error)
                assert source.channel == target.channel == "QEMU"
            launcher.close()
            await launcher.wait_closed()

    asyncio.run(scenario())


def test_half_close_keeps_the_other_direction_open(sockdir: Path) -> None:
    """The source's EOF reaches the target launcher, which still answers after it; then its
    own EOF ends the call cleanly. Both channels of one migration at once."""

    async def scenario() -> None:
        async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await read_all(reader)  # returns only on the source's half-close
            writer.write(b"after your EOF: " + request.upper())
            await writer.drain()
            writer.close()

        async with handlers(sockdir) as h:
            launchers = [await h.launcher(answer_after_eof, channel) for channel in (pb.LIBVIRT, pb.QEMU)]
            async with h.source(pb.LIBVIRT) as libvirt, h.source(pb.QEMU) as qemu:
                for tunnel, text in ((libvirt, b"libvirt"), (qemu, b"qemu")):
                    reader, writer = await connect(tunnel)
                    writer.write(text)
                    writer.write_eof()
                    assert await asyncio.wait_for(read_all(reader), WAIT) == b"after your EOF: " + text.upper()
                    writer.close()
                await wait_until(lambda: libvirt.active == qemu.active == h.target.tunnels.active == 0)
                counters = {c.channel: (c.sent, c.received, c.failures)
                            for c in h.source_stats.of_migration(MIGRATION)}
                assert counters == {"LIBVIRT": (7, 23, 0), "QEMU": (4, 20, 0)}
            for launcher in launchers:
                launcher.close()
                await launcher.wait_closed()
            assert not libvirt.path.exists(), "closing the tunnel removes its socket"

    asyncio.run(scenario())


def test_each_connection_gets_its_own_call(sockdir: Path) -> None:
    """libvirt (and QEMU with multifd) may open several connections on one channel."""

    async def scenario() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await read_all(reader))
            await writer.drain()
            writer.close()

        async with handlers(sockdir) as h:
            launcher = await h.launcher(echo)
            async with h.source() as tunnel:
                async def one(index: int) -> bytes:
                    reader, writer = await connect(tunnel)
                    writer.write(b"connection %d" % index)
                    writer.write_eof()
                    try:
                        return await asyncio.wait_for(read_all(reader), WAIT)
                    finally:
                        writer.close()

                answers = await asyncio.gather(*(one(i) for i in range(5)))
                assert answers == [b"connection %d" % i for i in range(5)]
                await wait_until(lambda: tunnel.active == 0)
                assert tunnel.counters.connections == 5
                assert h.target.tunnels.stats.get(MIGRATION, pb.QEMU).connections == 5  # type: ignore[union-attr]
            launcher.close()
            await launcher.wait_closed()

    asyncio.run(scenario())


def test_unknown_migration_and_bad_openings_are_refused(sockdir: Path) -> None:
    async def scenario() -> None:
        async with handlers(sockdir) as h:
            async def refused(*frames: pb.TunnelFrame) -> grpc.aio.AioRpcError:
                call = h.stub.MigrationTunnel()
                for frame in frames:
                    await call.write(frame)
                await call.done_writing()
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await asyncio.wait_for(call.read(), WAIT)
                return raised.value

            error = await refused(pb.TunnelFrame(open=pb.TunnelOpen(migration_uid="nope", channel=pb.QEMU)))
            assert error.code() == grpc.StatusCode.NOT_FOUND
            assert "migration 'nope' has no target prepared on this node" in (error.details() or "")

            launcher = await h.launcher(lambda r, w: asyncio.sleep(0), pb.LIBVIRT)
            error = await refused(pb.TunnelFrame(open=pb.TunnelOpen(migration_uid=MIGRATION, channel=pb.QEMU)))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "no QEMU channel" in (error.details() or "")

            other = pb.VMIRef(namespace="default", name="other", uid="other-uid")
            error = await refused(pb.TunnelFrame(open=pb.TunnelOpen(migration_uid=MIGRATION, channel=pb.LIBVIRT,
                                                                    vmi=other)))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "prepared for VMI uid 'vmi-uid-1'" in (error.details() or "")

            for frames in ((pb.TunnelFrame(data=b"x"),), (),
                           (pb.TunnelFrame(open=pb.TunnelOpen(migration_uid=MIGRATION)),)):
                assert (await refused(*frames)).code() == grpc.StatusCode.INVALID_ARGUMENT

            h.registry.unregister(MIGRATION)
            assert MIGRATION not in h.registry
            error = await refused(pb.TunnelFrame(open=pb.TunnelOpen(migration_uid=MIGRATION, channel=pb.LIBVIRT)))
            assert error.code() == grpc.StatusCode.NOT_FOUND

            # Through a source tunnel: the local connection is closed, the error is kept.
            async with h.source(migration="unknown") as tunnel:
                reader, writer = await connect(tunnel)
                writer.write(b"hello")
                assert await asyncio.wait_for(read_all(reader), WAIT) == b""
                writer.close()
                await wait_until(lambda: tunnel.active == 0)
                assert tunnel.counters.failures == 1
                assert "NOT_FOUND" in tunnel.counters.last_error
            launcher.close()
            await launcher.wait_closed()

    asyncio.run(scenario())


def test_target_launcher_gone_mid_stream_closes_the_source_side(sockdir: Path) -> None:
    async def scenario() -> None:
        async def dies_mid_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(MIB)
            writer.transport.abort()  # unread bytes left behind: the relay sees a reset

        before = asyncio.all_tasks()
        async with handlers(sockdir) as h:
            launcher = await h.launcher(dies_mid_stream)
            async with h.source() as tunnel:
                reader, writer = await connect(tunnel)

                async def flood() -> None:
                    with contextlib.suppress(ConnectionError):
                        while True:
                            writer.write(bytes(CHUNK))
                            await writer.drain()

                flooding = asyncio.create_task(flood())
                with contextlib.suppress(ConnectionError):
                    assert await asyncio.wait_for(reader.read(), WAIT) == b""
                await asyncio.wait_for(flooding, WAIT)
                writer.close()
                await wait_until(lambda: tunnel.active == 0 and h.target.tunnels.active == 0)
                target = h.target.tunnels.stats.get(MIGRATION, pb.QEMU)
                assert target is not None and target.failures == 1 and target.last_error
                assert tunnel.counters.failures == 1
                assert "UNAVAILABLE" in tunnel.counters.last_error
            launcher.close()
            await launcher.wait_closed()
        assert leftover_tasks(before) == []

    asyncio.run(scenario())


def test_source_launcher_gone_mid_stream_closes_the_target_side(sockdir: Path) -> None:
    async def scenario() -> None:
        launcher_saw_end: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    writer.write(bytes(CHUNK))
                    await writer.drain()
            except ConnectionError:
                pass
            launcher_saw_end.set_result(None)
            writer.close()

        before = asyncio.all_tasks()
        async with handlers(sockdir) as h:
            launcher = await h.launcher(chatty)
            async with h.source() as tunnel:
                reader, writer = await connect(tunnel)
                await asyncio.wait_for(reader.readexactly(MIB), WAIT)
                writer.transport.abort()  # QEMU killed, with unread bytes: a reset, not a half-close
                await asyncio.wait_for(launcher_saw_end, WAIT)
                await wait_until(lambda: tunnel.active == 0 and h.target.tunnels.active == 0)
                assert tunnel.counters.failures == 1
            launcher.close()
            await launcher.wait_closed()
        assert leftover_tasks(before) == []

    asyncio.run(scenario())


def test_target_handler_gone_mid_stream_closes_the_source_side(sockdir: Path) -> None:
    async def scenario() -> None:
        async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                await read_all(reader)
            writer.close()

        async with handlers(sockdir) as h:
            launcher = await h.launcher(sink)
            async with h.source() as tunnel:
                reader, writer = await connect(tunnel)
                writer.write(bytes(MIB))
                await writer.drain()
                await wait_until(lambda: h.target.tunnels.active == 1)
                await h.server.stop(None)  # the target handler goes away
                with contextlib.suppress(ConnectionError):
                    assert await asyncio.wait_for(reader.read(), WAIT) == b""
                writer.close()
                await wait_until(lambda: tunnel.active == 0 and h.target.tunnels.active == 0)
                assert tunnel.counters.failures == 1
            launcher.close()
            await launcher.wait_closed()

    asyncio.run(scenario())


def test_closing_the_source_tunnel_ends_open_connections(sockdir: Path) -> None:
    async def scenario() -> None:
        target_ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                await read_all(reader)
            target_ended.set_result(None)
            writer.close()

        before = asyncio.all_tasks()
        async with handlers(sockdir) as h:
            launcher = await h.launcher(quiet)
            tunnel = h.source()
            await tunnel.start()
            reader, writer = await connect(tunnel)
            await wait_until(lambda: h.target.tunnels.active == 1)
            await asyncio.wait_for(tunnel.close(), WAIT)
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
            await asyncio.wait_for(target_ended, WAIT)
            await wait_until(lambda: h.target.tunnels.active == 0)
            assert not tunnel.path.exists()
            writer.close()
            launcher.close()
            await launcher.wait_closed()
        assert leftover_tasks(before) == []

    asyncio.run(scenario())


def test_a_stalled_target_launcher_stops_the_source(sockdir: Path) -> None:
    """Nothing buffers without bound: a target launcher that does not read makes the source
    launcher's writes block after the socket buffers, gRPC's windows and a frame or two."""

    async def scenario() -> None:
        release = asyncio.Event()

        async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await release.wait()
            with contextlib.suppress(ConnectionError):
                await read_all(reader)
            writer.close()

        async with handlers(sockdir) as h:
            launcher = await h.launcher(stalled)
            async with h.source() as tunnel:
                reader, writer = await connect(tunnel)
                written = 0

                async def flood() -> None:
                    nonlocal written
                    while True:
                        writer.write(bytes(CHUNK))
                        await writer.drain()
                        written += CHUNK

                flooding = asyncio.create_task(flood())
                await asyncio.sleep(1.0)
                stalled_at = written
                await asyncio.sleep(0.5)
                assert written == stalled_at, "the source kept accepting bytes nobody reads"
                # ~7 MiB measured: unix socket buffers, gRPC's HTTP/2 windows, a frame per relay.
                assert written < 32 * MIB, f"{written / MIB:.0f} MiB in flight"
                release.set()
                await wait_until(lambda: written > stalled_at)  # and it resumes
                flooding.cancel()
                await asyncio.gather(flooding, return_exceptions=True)
                writer.close()
                await wait_until(lambda: tunnel.active == 0)
            launcher.close()
            await launcher.wait_closed()

    asyncio.run(scenario())


def test_the_hand_encoded_frames_are_protobuf_frames() -> None:
    for size in (0, 1, 127, 128, 16383, 16384, CHUNK, 3 * MIB):
        data = os.urandom(size)
        assert pb.TunnelFrame.FromString(_data_frame(data)) == pb.TunnelFrame(data=data)
        decoded = _decode(pb.TunnelFrame(data=data).SerializeToString())
        assert bytes(decoded) == data  # type: ignore[arg-type]
    assert _decode(pb.TunnelFrame(end_of_stream=True).SerializeToString()) is not None


def test_registry() -> None:
    registry = TargetRegistry()
    registry.register("m", pb.QEMU, "/q.sock")
    registry.register("m", pb.LIBVIRT, "/l.sock")
    assert str(registry.lookup("m", pb.QEMU).path) == "/q.sock"
    with pytest.raises(ValueError):
        registry.register("m", pb.TUNNEL_CHANNEL_UNSPECIFIED, "/x.sock")
    registry.unregister("m", pb.QEMU)
    with pytest.raises(LookupError, match="no QEMU channel"):
        registry.lookup("m", pb.QEMU)
    registry.unregister("m", pb.LIBVIRT)
    assert "m" not in registry and len(registry) == 0
    registry.unregister("m")  # absent is fine
    with pytest.raises(LookupError, match="no target prepared"):
        registry.lookup("m", pb.LIBVIRT)
