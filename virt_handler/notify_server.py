"""The handler's side of Notify: receive each launcher's event stream, apply, acknowledge.

Per launcher instance (``Hello.launcher_uid``) the handler remembers the last
sequence it applied, answers a (re)connecting launcher with it, drops resent
duplicates and refuses gaps. A malformed event is answered with ``Rejected`` and
a reason; it never breaks the stream or the handler.

A v2 launcher may send a batch of events in one message; the batch is answered with
one cumulative Ack (after a Rejected per refused event), so a busy stream costs a
message each way per batch, not per event.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc

SUPPORTED_NOTIFY_VERSIONS = (1, 2)
log = logging.getLogger(__name__)

# Called once per new event, in sequence order. Raising ValueError rejects the event.
EventSink = Callable[[notify_pb2.Hello, notify_pb2.DomainEvent], Awaitable[None] | None]
# Called for each stream's Hello: a launcher (re)connected, its Cmd server up.
HelloSink = Callable[[notify_pb2.Hello], None]


_KNOWN_TYPES = frozenset(v for v in notify_pb2.EventType.values() if v != notify_pb2.EVENT_TYPE_UNSPECIFIED)


class NotifyServicer(notify_pb2_grpc.NotifyServicer):
    def __init__(self, sink: EventSink, on_hello: HelloSink | None = None) -> None:
        self._sink = sink
        self._on_hello = on_hello
        self._applied: dict[str, int] = {}

    def last_applied(self, launcher_uid: str) -> int | None:
        return self._applied.get(launcher_uid)

    async def Events(self, request_iterator: AsyncIterator[notify_pb2.LauncherMessage],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[notify_pb2.HandlerMessage]:
        hello = await self._read_hello(request_iterator, context)
        uid = hello.launcher_uid
        if self._on_hello is not None:
            self._on_hello(hello)
        yield notify_pb2.HandlerMessage(resume_from=notify_pb2.Ack(sequence=self._applied.get(uid, 0)))
        async for message in request_iterator:
            kind = message.WhichOneof("payload")
            if kind == "batch":
                for reply in await self._handle_batch(hello, message.batch):
                    yield reply
                continue
            reply = await self._apply(hello, message.event) if kind == "event" else _rejected(
                0, "expected an event or a batch after Hello")
            if reply is not None:
                yield reply

    async def _read_hello(self, request_iterator: AsyncIterator[notify_pb2.LauncherMessage],
                          context: grpc.aio.ServicerContext) -> notify_pb2.Hello:
        async for first in request_iterator:
            if first.WhichOneof("payload") == "hello" and first.hello.launcher_uid:
                return first.hello
            break
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            "the first message of a Notify stream must be a Hello with launcher_uid set")
        raise AssertionError("unreachable: abort raises")

    async def _handle_batch(self, hello: notify_pb2.Hello,
                            batch: notify_pb2.EventBatch) -> list[notify_pb2.HandlerMessage]:
        replies = []
        for event in batch.events:
            reply = await self._apply(hello, event)
            if reply is not None and reply.WhichOneof("payload") == "rejected":
                replies.append(reply)
        # Every sequence up to the last one recorded was applied or refused with a reason.
        last = self._applied.get(hello.launcher_uid)
        if last is not None:
            replies.append(notify_pb2.HandlerMessage(ack=notify_pb2.Ack(sequence=last)))
        return replies

    async def _apply(self, hello: notify_pb2.Hello,
                     event: notify_pb2.DomainEvent) -> notify_pb2.HandlerMessage | None:
        if event.sequence < 1:
            return _rejected(event.sequence, "sequence must be 1 or more")
        last = self._applied.get(hello.launcher_uid)
        if last is not None and event.sequence <= last:
            return None  # a resend of something already applied
        if last is not None and event.sequence != last + 1:
            return _rejected(event.sequence, f"sequence gap: expected {last + 1}, got {event.sequence}")
        self._applied[hello.launcher_uid] = event.sequence
        if event.type not in _KNOWN_TYPES:
            return _rejected(event.sequence, f"type: unsupported event type {event.type}")
        try:
            outcome = self._sink(hello, event)
            if inspect.isawaitable(outcome):
                await outcome
        except ValueError as error:
            return _rejected(event.sequence, str(error))
        return notify_pb2.HandlerMessage(ack=notify_pb2.Ack(sequence=event.sequence))


def _rejected(sequence: int, reason: str) -> notify_pb2.HandlerMessage:
    return notify_pb2.HandlerMessage(rejected=notify_pb2.Rejected(sequence=sequence, reason=reason))
