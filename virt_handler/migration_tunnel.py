"""MigrationTunnel: a migration's libvirt and QEMU connections relayed between two handlers.

The source launcher's libvirtd and QEMU connect to unix sockets the source handler owns
(``SourceTunnel``, one per channel); each accepted connection becomes one
NodeService.MigrationTunnel call to the target handler, whose servicer (``TunnelTarget``)
connects to the socket the target launcher listens on, found in a ``TargetRegistry``
filled by whoever prepared the target. Bytes then flow both ways (QEMU's return path):

  source -> target: TunnelFrame.open (migration uid, channel, VMI), then data frames
  both ways:        data frames, then end_of_stream when that writer's socket reached EOF
                    (a half-close: the other direction keeps flowing)
  the call ends OK once both directions saw end_of_stream; any failure (a socket reset,
  the peer handler gone, a cancelled call) closes both ends and fails the call.

Flow control, per connection and direction: a relay reads at most ``chunk`` bytes from its
socket and awaits the gRPC write of that frame before reading more; it awaits the socket
send of each received frame (at most what the peer wrote: ``chunk`` from our own handlers,
gRPC's message limit from anyone) before reading the next one. So this module holds one
frame per direction; beyond it bytes wait only in the kernel's socket buffers and gRPC's
HTTP/2 windows (test_a_stalled_target_launcher_stops_the_source measures the whole).

Why one frame, not a pipeline: the relay is CPU-bound, and bench.tunnel shows where the CPU
goes. The gRPC leg alone (its "grpc only" path: frames from memory to a handler that drops
them) costs about twice the CPU per byte of the whole raw-relay path, mostly kernel time
waking gRPC's threads and the event loop for each message, so the tunnel runs at a fraction
of a raw unix-socket relay whatever this module does. Overlapping socket reads with gRPC
writes (a bounded queue between them) and coalescing reads into 1 MiB frames were measured
on 2 CPUs: the same throughput for 5-20% more CPU, as larger and more numerous live buffers
make glibc's malloc unmap and re-fault memory.

The source side speaks the TunnelFrame wire format by hand (a data frame is tag 0x12,
a varint length, the bytes): it saves the protobuf copies of every payload on the path
that carries the guest's memory; whatever else arrives is parsed by protobuf.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc._cython import cygrpc

from grpc_support.limits import OPTIONS
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
METHOD = "/kubevirt.nodeservice.v1.NodeService/MigrationTunnel"
CONNECT_SECONDS = 10.0
# How long the source waits for a call's status once its relay ended.
STATUS_SECONDS = 10.0
# Channel options for a tunnel channel to a peer handler: the usual ones. Larger HTTP/2
# frames, write buffers, stream lookahead or optimization_target "throughput" made no
# measurable difference (bench.tunnel), nor did sync gRPC in threads instead of grpc.aio.
TUNNEL_CHANNEL_OPTIONS: list[tuple[str, Any]] = list(OPTIONS)

CHANNELS = (pb.LIBVIRT, pb.QEMU, pb.BLOCK)
CHANNEL_NAMES = ", ".join(pb.TunnelChannel.Name(c) for c in CHANNELS)

_DATA_TAG = 0x12  # field 2 (data), wire type 2 (length-delimited)
_EOS = pb.TunnelFrame(end_of_stream=True)
_EOS_BYTES = _EOS.SerializeToString()


class _EndOfStream:
    """The peer's end_of_stream frame."""


EOS = _EndOfStream()


def channel_name(channel: int) -> str:
    try:
        return pb.TunnelChannel.Name(channel)
    except ValueError:
        return str(channel)


# -- counters --------------------------------------------------------------------------------

@dataclass
class TunnelCounters:
    """One side's figures for one migration channel, summed over its connections.

    ``sent``: bytes read from this side's socket and written into the tunnel;
    ``received``: bytes taken from the tunnel and written to this side's socket.
    """

    migration_uid: str
    channel: str
    sent: int = 0
    received: int = 0
    connections: int = 0
    active: int = 0
    failures: int = 0
    last_error: str = ""

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error


class TunnelStats:
    """Counters per (migration uid, channel): what the handler reports and forgets."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], TunnelCounters] = {}

    def counters(self, migration_uid: str, channel: int) -> TunnelCounters:
        key = (migration_uid, int(channel))
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = TunnelCounters(migration_uid, channel_name(channel))
        return found

    def get(self, migration_uid: str, channel: int) -> TunnelCounters | None:
        return self._by_key.get((migration_uid, int(channel)))

    def of_migration(self, migration_uid: str) -> list[TunnelCounters]:
        return [c for (uid, _), c in sorted(self._by_key.items()) if uid == migration_uid]

    def forget(self, migration_uid: str) -> None:
        for key in [k for k in self._by_key if k[0] == migration_uid]:
            del self._by_key[key]


# -- target side -----------------------------------------------------------------------------

class UnknownMigration(LookupError):
    """No target was prepared on this node for that migration."""


class UnknownChannel(LookupError):
    """The migration is known but that channel has no socket registered."""


@dataclass(frozen=True)
class _Target:
    path: Path
    vmi_uid: str


class TargetRegistry:
    """Where each prepared migration's channels go on this (target) node: the target
    launcher's libvirt socket and QEMU incoming socket."""

    def __init__(self) -> None:
        self._targets: dict[str, dict[int, _Target]] = {}

    def register(self, migration_uid: str, channel: int, path: str | os.PathLike[str], vmi_uid: str = "") -> None:
        """``vmi_uid``, when given, must match the VMI the source names in its open frame."""
        if not migration_uid:
            raise ValueError("migration_uid: required")
        if channel not in CHANNELS:
            raise ValueError(f"channel: {CHANNEL_NAMES}, not {channel!r}")
        self._targets.setdefault(migration_uid, {})[int(channel)] = _Target(Path(path), vmi_uid)

    def unregister(self, migration_uid: str, channel: int | None = None) -> None:
        """Forget one channel, or (``channel`` None) the whole migration; absent is fine."""
        channels = self._targets.get(migration_uid)
        if channels is None:
            return
        if channel is None:
            channels.clear()
        else:
            channels.pop(int(channel), None)
        if not channels:
            del self._targets[migration_uid]

    def lookup(self, migration_uid: str, channel: int) -> _Target:
        channels = self._targets.get(migration_uid)
        if channels is None:
            raise UnknownMigration(f"migration {migration_uid!r} has no target prepared on this node")
        target = channels.get(int(channel))
        if target is None:
            raise UnknownChannel(f"migration {migration_uid!r} has no {channel_name(channel)} channel on this node")
        return target

    def __contains__(self, migration_uid: object) -> bool:
        return migration_uid in self._targets

    def __len__(self) -> int:
        return len(self._targets)


class TunnelTarget:
    """The servicer's half: ``await target.serve(context)`` is NodeService.MigrationTunnel."""

    def __init__(self, registry: TargetRegistry, stats: TunnelStats | None = None, chunk: int = CHUNK,
                 connect_seconds: float = CONNECT_SECONDS) -> None:
        self.registry = registry
        self.stats = stats if stats is not None else TunnelStats()
        self.chunk = chunk
        self._connect_seconds = connect_seconds
        self.active = 0

    async def serve(self, context: grpc.aio.ServicerContext) -> None:
        opening = await _opening(context)
        try:
            target = self.registry.lookup(opening.migration_uid, opening.channel)
        except UnknownMigration as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
            raise  # not reached: abort raises
        except UnknownChannel as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
            raise
        if target.vmi_uid and opening.vmi.uid and opening.vmi.uid != target.vmi_uid:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"migration {opening.migration_uid!r} is prepared for VMI uid {target.vmi_uid!r}, "
                                f"not {opening.vmi.uid!r}")
        counters = self.stats.counters(opening.migration_uid, opening.channel)
        what = f"{channel_name(opening.channel)} channel of migration {opening.migration_uid}"
        sock = await self._connect(target.path, what, counters, context)
        counters.connections += 1
        counters.active += 1
        self.active += 1
        try:
            await _relay(sock, _ServerStream(context), counters, self.chunk)
        except TunnelBroken as error:
            counters.failed(str(error))
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{what}: {error}")
        finally:
            sock.close()
            counters.active -= 1
            self.active -= 1

    async def _connect(self, path: Path, what: str, counters: TunnelCounters,
                       context: grpc.aio.ServicerContext) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, str(path)), self._connect_seconds)
            return sock
        except (OSError, TimeoutError) as error:
            sock.close()
            message = f"{what}: cannot connect to the target launcher at {path}: {error or 'timed out'}"
            counters.failed(message)
            await context.abort(grpc.StatusCode.UNAVAILABLE, message)
            raise  # not reached
        except BaseException:
            sock.close()
            raise


async def _opening(context: grpc.aio.ServicerContext) -> pb.TunnelOpen:
    first = await context.read()
    if first is grpc.aio.EOF or first.WhichOneof("payload") != "open":
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first frame must be open (which migration "
                                                               "and channel)")
    opening = first.open
    if not opening.migration_uid:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "open.migration_uid: required")
    if opening.channel not in CHANNELS:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"open.channel: {CHANNEL_NAMES}")
    return opening


class _ServerStream:
    """The target handler's view of the call (protobuf frames)."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    async def read(self) -> bytes | _EndOfStream | None:
        frame = await self._context.read()
        if frame is grpc.aio.EOF:
            return None
        return _payload(frame)

    async def write(self, data: bytes) -> None:
        await self._context.write(pb.TunnelFrame(data=data))

    async def end(self) -> None:
        await self._context.write(_EOS)


def _payload(frame: pb.TunnelFrame) -> bytes | _EndOfStream:
    kind = frame.WhichOneof("payload")
    if kind == "data":
        return frame.data
    if kind == "end_of_stream":
        return EOS
    raise TunnelBroken(f"unexpected {kind or 'empty'} frame in the middle of the tunnel")


# -- source side -----------------------------------------------------------------------------

def tunnel_channel(address: str, credentials: grpc.ChannelCredentials | None,
                   target_name: str | None = None) -> grpc.aio.Channel:
    """A channel to the target handler for tunnels (mutual TLS in production: credentials from
    pki.cluster_ca.channel_credentials; ``target_name`` overrides the name checked in its
    certificate, e.g. the target node's name)."""
    options = list(TUNNEL_CHANNEL_OPTIONS)
    if target_name:
        options.append(("grpc.ssl_target_name_override", target_name))
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, credentials, options=options)


def _identity(message: bytes) -> bytes:
    return message


def _data_frame(data: bytes) -> bytes:
    n = len(data)
    header = bytearray((_DATA_TAG,))
    while n > 0x7F:
        header.append((n & 0x7F) | 0x80)
        n >>= 7
    header.append(n)
    return bytes(header) + data


def _decode(raw: bytes) -> memoryview | bytes | _EndOfStream:
    """A TunnelFrame on the wire: data frames without a copy, anything else via protobuf."""
    if raw and raw[0] == _DATA_TAG:
        length, shift, i = 0, 0, 1
        while i < len(raw) and i < 11:
            byte = raw[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                if i + length == len(raw):
                    return memoryview(raw)[i:]
                break
            shift += 7
    return _payload(pb.TunnelFrame.FromString(raw))


class _CallEnded(Exception):
    """A write failed because the call had ended: its status tells why."""


class _ClientStream:
    """The source handler's view of its call (hand-encoded frames).

    Data frames go to the call's Cython layer directly: ``call.write`` answers a write
    that fails because the target already ended the call by replacing the target's status
    with INTERNAL "Internal error from Core" (grpc/grpc#36066); this way the status the
    target sent (say UNAVAILABLE: its launcher's socket broke) is what the source reports.
    """

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self._call = call
        self._send = getattr(getattr(call, "_cython_call", None), "send_serialized_message", None)

    async def read(self) -> memoryview | bytes | _EndOfStream | None:
        raw = await self._call.read()
        if raw is grpc.aio.EOF:
            return None
        return _decode(raw)

    async def write(self, data: bytes) -> None:
        await self._write(_data_frame(data))

    async def end(self) -> None:
        await self._write(_EOS_BYTES)
        await self._call.done_writing()

    async def _write(self, frame: bytes) -> None:
        if self._send is None:  # not the grpc.aio this was written against: the public way
            await self._call.write(frame)
            return
        try:
            await self._send(frame)
        except cygrpc.InternalError as error:
            raise _CallEnded(str(error)) from error
        except asyncio.CancelledError:
            self._call.cancel()
            raise


class SourceTunnel:
    """One channel of one migration on the source node.

    Listens on ``socket_path`` (the source launcher's libvirtd or QEMU connects there);
    every accepted connection is relayed over its own MigrationTunnel call on ``peer``
    (a grpc.aio channel to the target handler, see ``tunnel_channel``); ``channel`` is
    one of ``CHANNELS``.

        tunnel = SourceTunnel(peer, migration_uid, pb.QEMU, path, vmi=ref, stats=stats)
        await tunnel.start()
        ...                       # migrate; tunnel.counters has the figures
        await tunnel.close()      # stops listening, ends open connections, removes the socket
    """

    def __init__(self, peer: grpc.aio.Channel, migration_uid: str, channel: int,
                 socket_path: str | os.PathLike[str], *, vmi: pb.VMIRef | None = None,
                 stats: TunnelStats | None = None, chunk: int = CHUNK, socket_mode: int | None = None) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"channel: {CHANNEL_NAMES}, not {channel!r}")
        self._call_factory = peer.stream_stream(METHOD, request_serializer=_identity,
                                                response_deserializer=_identity)
        self._open = pb.TunnelFrame(open=pb.TunnelOpen(migration_uid=migration_uid, channel=channel,
                                                       vmi=vmi or pb.VMIRef())).SerializeToString()
        self.migration_uid = migration_uid
        self.channel = channel
        self.path = Path(socket_path)
        self.stats = stats if stats is not None else TunnelStats()
        self.counters = self.stats.counters(migration_uid, channel)
        self._chunk = chunk
        self._mode = socket_mode
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._what = f"{channel_name(channel)} channel of migration {migration_uid}"

    @property
    def active(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("SourceTunnel: already started")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            if self._mode is not None:
                os.chmod(self.path, self._mode)
            listener.listen(16)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._accepting = asyncio.create_task(self._accept(listener), name=f"tunnel-accept {self._what}")

    async def close(self) -> None:
        """Stop listening and end every open connection (their calls are cancelled)."""
        tasks = [t for t in (self._accepting, *self._connections) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def wait_idle(self) -> None:
        """Until no connection is open (the ones open now and any opened meanwhile)."""
        while self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def __aenter__(self) -> SourceTunnel:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(listener)
            conn.setblocking(False)
            task = asyncio.create_task(self._connection(conn), name=f"tunnel {self._what}")
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _connection(self, sock: socket.socket) -> None:
        counters = self.counters
        counters.connections += 1
        counters.active += 1
        call = self._call_factory()
        try:
            await call.write(self._open)
            try:
                await _relay(sock, _ClientStream(call), counters, self._chunk)
            except _CallEnded:
                pass  # the status below says why
            code = await asyncio.wait_for(call.code(), STATUS_SECONDS)
            if code != grpc.StatusCode.OK:
                raise TunnelBroken(f"{code.name}: {await call.details()}")
        except TimeoutError:
            counters.failed(f"{self._what}: the tunnel call broke and ended without a status")
            log.warning("%s failed without a status", self._what)
        except grpc.aio.AioRpcError as error:
            counters.failed(f"{self._what}: {error.code().name}: {error.details()}")
            log.warning("%s failed: %s: %s", self._what, error.code().name, error.details())
        except asyncio.InvalidStateError:
            counters.failed(f"{self._what}: the target handler ended the call before this side's end_of_stream")
            log.warning("%s failed: the target ended the call early", self._what)
        except TunnelBroken as error:
            counters.failed(f"{self._what}: {error}")
            log.warning("%s failed: %s", self._what, error)
        finally:
            call.cancel()  # a no-op once the call ended; otherwise the target lets go too
            sock.close()
            counters.active -= 1


# -- the relay both sides share ----------------------------------------------------------------

class TunnelBroken(Exception):
    """A socket failed, or the stream broke the protocol."""


async def _relay(sock: socket.socket, stream: Any, counters: TunnelCounters, chunk: int) -> None:
    """Both directions until both ended; the first failure ends both (the caller closes
    the socket and the call)."""
    outbound = asyncio.create_task(_socket_to_stream(sock, stream, counters, chunk))
    inbound = asyncio.create_task(_stream_to_socket(sock, stream, counters))
    try:
        pending: set[asyncio.Task[None]] = {outbound, inbound}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises the first failure
    finally:
        for task in (outbound, inbound):
            task.cancel()
        await asyncio.gather(outbound, inbound, return_exceptions=True)


async def _socket_to_stream(sock: socket.socket, stream: Any, counters: TunnelCounters, chunk: int) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = await loop.sock_recv(sock, chunk)
        except OSError as error:
            raise TunnelBroken(f"reading the local socket: {_describe(error)}") from error
        if not data:
            break
        await stream.write(data)
        counters.sent += len(data)
    await stream.end()


async def _stream_to_socket(sock: socket.socket, stream: Any, counters: TunnelCounters) -> None:
    loop = asyncio.get_running_loop()
    while True:
        data = await stream.read()
        if data is None or data is EOS:
            break  # the peer half-closed (a bare end of the request stream counts too)
        if not data:
            continue
        try:
            await loop.sock_sendall(sock, data)
        except OSError as error:
            raise TunnelBroken(f"writing the local socket: {_describe(error)}") from error
        counters.received += len(data)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError as error:
        if error.errno != errno.ENOTCONN:
            raise TunnelBroken(f"half-closing the local socket: {_describe(error)}") from error


def _describe(error: OSError) -> str:
    return error.strerror or str(error)
