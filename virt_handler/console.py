"""Serial consoles: NodeService.Console bridged to a guest's serial socket.

The launcher's QEMU binds the socket in the directory this handler shares with it
(kubevirt_api.pod_layout.serial_socket). One session per VMI, as upstream: QEMU's
serial port takes one client at a time, and a newer session takes over, closing the
older one with ABORTED (virt-api tells its client "another user connected").

The stream, as virt-api relies on it:
  client -> handler: ConsoleInput.open (which VMI), then ConsoleInput.data
  handler -> client: one empty ConsoleOutput once the guest's socket is attached (so
                     virt-api answers its websocket client only then), then the bytes
  either side ending ends the session; the socket is always closed.
Flow control comes from awaiting each gRPC write and each socket drain: no side
buffers more than one chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import grpc

from kubevirt_api.pod_layout import serial_socket
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from oci_layout.rooted_paths import UnsafePath, pod_uid

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
# How long a new session waits for the one it took over to let go of the socket.
TAKEOVER_SECONDS = 5.0
TAKEN_OVER = "another console connection to this VMI took over"


class _Session:
    """One attached console: closing its socket ends both directions."""

    def __init__(self) -> None:
        self.taken_over = False
        self.done = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None

    def attach(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        if self.taken_over:
            writer.close()

    def take_over(self) -> None:
        self.taken_over = True
        if self._writer is not None:
            self._writer.close()  # the reader sees EOF and the session winds down


class ConsoleSessions:
    """At most one session per VMI uid; the newest wins."""

    def __init__(self) -> None:
        self._by_uid: dict[str, _Session] = {}

    async def open(self, uid: str) -> _Session:
        previous = self._by_uid.get(uid)
        session = self._by_uid[uid] = _Session()
        if previous is not None:
            previous.take_over()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(previous.done.wait(), TAKEOVER_SECONDS)
        return session

    def close(self, uid: str, session: _Session) -> None:
        if self._by_uid.get(uid) is session:
            del self._by_uid[uid]
        session.done.set()

    def __len__(self) -> int:
        return len(self._by_uid)


class SerialConsoles:
    def __init__(self, node_name: str, sockets_dir: Path) -> None:
        self._node = node_name
        self._sockets = Path(sockets_dir)
        self.sessions = ConsoleSessions()

    async def serve(self, context: grpc.aio.ServicerContext) -> None:
        """The whole session, on gRPC's reader/writer API: a cancelled RPC cancels this
        coroutine wherever it waits, so the socket is closed on every path."""
        ref = await _opening(context)
        path = Path(serial_socket(ref.uid, str(self._sockets)))
        if not path.exists():
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"VMI {ref.namespace}/{ref.name} has no serial console on node {self._node}")
        session = await self.sessions.open(ref.uid)
        try:
            reader, writer = await _connect(path, ref, context)
            session.attach(writer)
            log.info("console of VMI %s/%s attached", ref.namespace, ref.name)
            await context.write(pb.ConsoleOutput())
            await _relay(context, reader, writer)
            if session.taken_over:
                await context.abort(grpc.StatusCode.ABORTED, TAKEN_OVER)
        finally:
            self.sessions.close(ref.uid, session)
            log.info("console of VMI %s/%s detached", ref.namespace, ref.name)


async def _opening(context: grpc.aio.ServicerContext) -> pb.VMIRef:
    first = await context.read()
    if first is grpc.aio.EOF or first.WhichOneof("payload") != "open":
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be open (which VMI)")
    if not first.open.uid:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "open.uid: required to find the VMI's console")
    try:
        pod_uid(first.open.uid)  # a directory name under the shared sockets directory, nothing more
    except UnsafePath as error:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"open.uid: {error}")
    return first.open


async def _connect(path: Path, ref: pb.VMIRef, context: grpc.aio.ServicerContext
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_unix_connection(str(path), limit=CHUNK)
    except OSError as error:
        await context.abort(grpc.StatusCode.UNAVAILABLE,
                            f"cannot attach to the serial console of VMI {ref.namespace}/{ref.name}: {error}")
        raise  # not reached: abort raises


async def _relay(context: grpc.aio.ServicerContext, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    """Guest bytes out as they come, client bytes in from a task; ends when either ends."""
    to_guest = asyncio.create_task(_to_guest(context, writer))
    try:
        while data := await reader.read(CHUNK):
            await context.write(pb.ConsoleOutput(data=data))
    except ConnectionError:
        pass  # the socket went away: the session is over
    finally:
        to_guest.cancel()
        await asyncio.gather(to_guest, return_exceptions=True)
        writer.close()


async def _to_guest(context: grpc.aio.ServicerContext, writer: asyncio.StreamWriter) -> None:
    try:
        while (message := await context.read()) is not grpc.aio.EOF:
            if message.data:
                writer.write(message.data)
                await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()  # the client is done, so is the session: the reader sees EOF
