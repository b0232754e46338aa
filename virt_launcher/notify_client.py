"""The launcher's side of Notify: one long-lived, acknowledged stream of domain events.

Events get consecutive sequence numbers and stay buffered until the handler
acknowledges them, so a handler restart or a dropped stream loses nothing: on
reconnect the launcher resends what was not acknowledged. The buffer is bounded
(``window``): when the handler falls behind, ``send`` waits instead of growing
memory without limit.

With a v2 handler, what is waiting when the stream writes goes as one batch (bounded in
bytes): a burst of events then costs one gRPC message, not one each.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator

import grpc

from grpc_support.limits import OPTIONS
from grpc_support.unix import unix_target
from grpc_support.versions import negotiate
from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc

SUPPORTED_NOTIFY_VERSIONS = (1, 2)
BATCHES_FROM_VERSION = 2
# Far below the message limit: a batch is cut before it would reach this size.
MAX_BATCH_BYTES = 1024 * 1024
log = logging.getLogger(__name__)


class DomainNotifier:
    def __init__(self, socket_path: str | os.PathLike[str], hello: notify_pb2.Hello, *, window: int = 4096,
                 reconnect_delay: float = 0.2, hold_hello: bool = False) -> None:
        """hold_hello: dial and negotiate now, but send the Hello only on announce(): the
        handler takes a Hello as "this launcher's Cmd serves"."""
        if window < 1:
            raise ValueError("window: must be at least 1")
        self._target = unix_target(socket_path)
        self._hello = notify_pb2.Hello()
        self._hello.CopyFrom(hello)
        if not self._hello.launcher_uid:
            self._hello.launcher_uid = str(uuid.uuid4())
        self._window = window
        self._reconnect_delay = reconnect_delay
        self._unacked: OrderedDict[int, notify_pb2.DomainEvent] = OrderedDict()
        self._next_sequence = 1
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._announced = asyncio.Event()
        if not hold_hello:
            self._announced.set()
        self.rejected: list[notify_pb2.Rejected] = []

    @property
    def launcher_uid(self) -> str:
        return self._hello.launcher_uid

    def announce(self) -> None:
        """Let the Hello go (once Cmd serves); a stream opened before waits for this."""
        self._announced.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="notify-stream")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def send(self, event: notify_pb2.DomainEvent) -> int:
        """Queue ``event`` (its sequence is assigned here); waits while the window is full."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._unacked) < self._window)
            sequence = self._next_sequence
            self._next_sequence += 1
            queued = notify_pb2.DomainEvent()
            queued.CopyFrom(event)
            queued.sequence = sequence
            self._unacked[sequence] = queued
            self._changed.notify_all()
        return sequence

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until the handler has acknowledged every event sent so far."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: not self._unacked)

    async def _run(self) -> None:
        while True:
            try:
                await self._stream_once()
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, ConnectionError) as error:
                log.info("notify stream to %s ended (%s); reconnecting", self._target, error)
            await asyncio.sleep(self._reconnect_delay)

    async def _stream_once(self) -> None:
        async with grpc.aio.insecure_channel(self._target, options=OPTIONS) as channel:
            version = await negotiate(channel, "NotifyInfo", SUPPORTED_NOTIFY_VERSIONS)
            call = notify_pb2_grpc.NotifyStub(channel).Events(self._outgoing(version >= BATCHES_FROM_VERSION))
            async for reply in call:
                await self._on_reply(reply)

    async def _outgoing(self, batches: bool) -> AsyncIterator[notify_pb2.LauncherMessage]:
        await self._announced.wait()
        yield notify_pb2.LauncherMessage(hello=self._hello)
        cursor = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self._next_sequence - 1 > cursor and bool(self._unacked))
                # Sequences in the buffer are consecutive, so what is left to send is a range.
                first = max(cursor + 1, next(iter(self._unacked)))
                batch = [self._unacked[seq] for seq in range(first, self._next_sequence)]
            if batches:
                for message in _batched(batch):
                    yield message
            else:
                for event in batch:
                    yield notify_pb2.LauncherMessage(event=event)
            cursor = batch[-1].sequence

    async def _on_reply(self, reply: notify_pb2.HandlerMessage) -> None:
        kind = reply.WhichOneof("payload")
        if kind in ("ack", "resume_from"):
            await self._acknowledge(getattr(reply, kind).sequence)
        elif kind == "rejected":
            log.warning("handler rejected event %d: %s", reply.rejected.sequence, reply.rejected.reason)
            self.rejected.append(reply.rejected)
            await self._acknowledge(reply.rejected.sequence)

    async def _acknowledge(self, sequence: int) -> None:
        async with self._changed:
            while self._unacked and next(iter(self._unacked)) <= sequence:
                self._unacked.popitem(last=False)
            self._changed.notify_all()


def _batched(events: list[notify_pb2.DomainEvent]) -> Iterator[notify_pb2.LauncherMessage]:
    """The events as few batch messages as MAX_BATCH_BYTES allows (one event each at worst)."""
    message = notify_pb2.LauncherMessage()
    size = 0
    for event in events:
        event_size = event.ByteSize()
        if size and size + event_size > MAX_BATCH_BYTES:
            yield message
            message, size = notify_pb2.LauncherMessage(), 0
        message.batch.events.append(event)
        size += event_size
    yield message
