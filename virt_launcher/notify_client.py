"""The launcher's side of Notify: one long-lived, acknowledged stream of domain events.

Events get consecutive sequence numbers and stay buffered until the handler
acknowledges them, so a handler restart or a dropped stream loses nothing: on
reconnect the launcher resends what was not acknowledged. The buffer is bounded
(``window``): when the handler falls behind, ``send`` waits instead of growing
memory without limit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator

import grpc

from grpc_support.limits import OPTIONS
from grpc_support.unix import unix_target
from grpc_support.versions import negotiate
from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc

SUPPORTED_NOTIFY_VERSIONS = (1,)
log = logging.getLogger(__name__)


class DomainNotifier:
    def __init__(self, socket_path: str | os.PathLike[str], hello: notify_pb2.Hello, *, window: int = 4096,
                 reconnect_delay: float = 0.2) -> None:
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
        self.rejected: list[notify_pb2.Rejected] = []

    @property
    def launcher_uid(self) -> str:
        return self._hello.launcher_uid

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
            await negotiate(channel, "NotifyInfo", SUPPORTED_NOTIFY_VERSIONS)
            call = notify_pb2_grpc.NotifyStub(channel).Events(self._outgoing())
            async for reply in call:
                await self._on_reply(reply)

    async def _outgoing(self) -> AsyncIterator[notify_pb2.LauncherMessage]:
        yield notify_pb2.LauncherMessage(hello=self._hello)
        cursor = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self._next_sequence - 1 > cursor and bool(self._unacked))
                # Sequences in the buffer are consecutive, so what is left to send is a range.
                first = max(cursor + 1, next(iter(self._unacked)))
                batch = [self._unacked[seq] for seq in range(first, self._next_sequence)]
            for event in batch:
                cursor = event.sequence
                yield notify_pb2.LauncherMessage(event=event)

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
