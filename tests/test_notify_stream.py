"""Notify: one acknowledged stream of domain events, in order, across reconnects; a v1
handler gets and acks them one by one, a v2 handler in batches."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from grpc_support.server import service, start_server
from grpc_support.unix import unix_target
from grpc_support.versions import info_service
from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc
from virt_handler.notify_server import SUPPORTED_NOTIFY_VERSIONS, NotifyServicer
from virt_launcher.notify_client import DomainNotifier

HELLO = notify_pb2.Hello(vmi_namespace="default", vmi_name="testvmi", vmi_uid="uid-1")


class Sink:
    def __init__(self) -> None:
        self.sequences: list[int] = []

    def __call__(self, hello: notify_pb2.Hello, event: notify_pb2.DomainEvent) -> None:
        if event.domain_json:
            json.loads(event.domain_json)  # a malformed domain raises ValueError -> Rejected
        self.sequences.append(event.sequence)


class AckRecordingNotifier(DomainNotifier):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.acks: list[int] = []

    async def _on_reply(self, reply: notify_pb2.HandlerMessage) -> None:
        if reply.WhichOneof("payload") == "ack":
            self.acks.append(reply.ack.sequence)
        await super()._on_reply(reply)


async def _serve(socket: Path, sink: Sink, versions: tuple[int, ...] = SUPPORTED_NOTIFY_VERSIONS) -> grpc.aio.Server:
    server, _ = await start_server([
        service(notify_pb2, "Notify", notify_pb2_grpc.add_NotifyServicer_to_server, NotifyServicer(sink)),
        info_service("NotifyInfo", versions),
    ], unix_socket=socket)
    return server


def _lifecycle(state: str) -> notify_pb2.DomainEvent:
    return notify_pb2.DomainEvent(type=notify_pb2.DOMAIN_LIFECYCLE,
                                  domain_json=json.dumps({"status": {"status": state}}).encode())


def _ten_thousand_events(sockdir: Path, versions: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Pushes 10,000 events to a handler speaking ``versions``: (sequences applied, acks)."""
    async def scenario() -> tuple[list[int], list[int]]:
        socket = sockdir / "notify.sock"
        sink = Sink()
        server = await _serve(socket, sink, versions)
        notifier = AckRecordingNotifier(socket, HELLO, window=1024)
        notifier.start()
        try:
            for i in range(10_000):
                await notifier.send(_lifecycle("Running" if i % 2 else "Paused"))
            await notifier.flush(timeout=60)
        finally:
            await notifier.close()
            await server.stop(None)
        return sink.sequences, notifier.acks

    return asyncio.run(scenario())


def test_ten_thousand_events_acked_one_by_one_by_a_v1_handler(sockdir: Path) -> None:
    applied, acks = _ten_thousand_events(sockdir, (1,))
    assert applied == list(range(1, 10_001))
    assert acks == list(range(1, 10_001))


def test_ten_thousand_events_acked_in_batches_by_a_v2_handler(sockdir: Path) -> None:
    applied, acks = _ten_thousand_events(sockdir, SUPPORTED_NOTIFY_VERSIONS)
    assert applied == list(range(1, 10_001))
    assert acks == sorted(set(acks)) and acks[-1] == 10_000
    assert len(acks) < 10_000 / 2, "a burst should travel in batches"


@pytest.mark.parametrize("versions", [(1,), (1, 2)], ids=["v1", "v2"])
def test_events_survive_a_handler_restart(sockdir: Path, versions: tuple[int, ...]) -> None:
    async def scenario() -> None:
        socket = sockdir / "notify.sock"
        first_sink, second_sink = Sink(), Sink()
        server = await _serve(socket, first_sink, versions)
        notifier = DomainNotifier(socket, HELLO, window=64, reconnect_delay=0.05)
        notifier.start()
        try:
            for _ in range(100):
                await notifier.send(_lifecycle("Running"))
            await notifier.flush(timeout=30)
            await server.stop(None)
            for _ in range(50):  # buffered while no handler listens
                await notifier.send(_lifecycle("Paused"))
            server = await _serve(socket, second_sink, versions)
            await notifier.flush(timeout=30)
        finally:
            await notifier.close()
            await server.stop(None)
        assert first_sink.sequences == list(range(1, 101))
        assert second_sink.sequences == list(range(101, 151))

    asyncio.run(scenario())


def test_window_bounds_the_buffer_when_no_handler_listens(sockdir: Path) -> None:
    async def scenario() -> None:
        notifier = DomainNotifier(sockdir / "nobody.sock", HELLO, window=8, reconnect_delay=0.05)
        notifier.start()
        try:
            for _ in range(8):
                await notifier.send(_lifecycle("Running"))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await notifier.send(_lifecycle("Running"))
        finally:
            await notifier.close()

    asyncio.run(scenario())


def test_malformed_messages_are_refused_with_a_reason(sockdir: Path) -> None:
    async def scenario() -> None:
        socket = sockdir / "notify.sock"
        sink = Sink()
        server = await _serve(socket, sink)
        try:
            async with grpc.aio.insecure_channel(unix_target(socket)) as channel:
                stub = notify_pb2_grpc.NotifyStub(channel)
                no_hello = stub.Events(iter([notify_pb2.LauncherMessage(event=_lifecycle("Running"))]))
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in no_hello:
                        pass
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "Hello" in refused.value.details()

                messages = [
                    notify_pb2.LauncherMessage(hello=notify_pb2.Hello(launcher_uid="raw-1")),
                    notify_pb2.LauncherMessage(event=notify_pb2.DomainEvent(sequence=1, type=77)),
                    notify_pb2.LauncherMessage(event=notify_pb2.DomainEvent(
                        sequence=2, type=notify_pb2.DOMAIN_LIFECYCLE, domain_json=b"{not json")),
                    notify_pb2.LauncherMessage(event=notify_pb2.DomainEvent(
                        sequence=3, type=notify_pb2.DOMAIN_LIFECYCLE, domain_json=b"{}")),
                    notify_pb2.LauncherMessage(event=notify_pb2.DomainEvent(
                        sequence=9, type=notify_pb2.DOMAIN_LIFECYCLE)),
                ]
                replies = [reply async for reply in stub.Events(iter(messages))]
        finally:
            await server.stop(None)
        kinds = [(r.WhichOneof("payload"), getattr(r, r.WhichOneof("payload")).sequence) for r in replies]
        assert kinds == [("resume_from", 0), ("rejected", 1), ("rejected", 2), ("ack", 3), ("rejected", 9)]
        assert "unsupported event type 77" in replies[1].rejected.reason
        assert replies[2].rejected.reason  # the JSON error, as the sink raised it
        assert "sequence gap: expected 4, got 9" in replies[4].rejected.reason
        assert sink.sequences == [3]

    asyncio.run(scenario())


def test_a_batch_is_answered_with_its_refusals_then_one_ack(sockdir: Path) -> None:
    async def scenario() -> None:
        socket = sockdir / "notify.sock"
        sink = Sink()
        server = await _serve(socket, sink)
        events = [notify_pb2.DomainEvent(sequence=1, type=notify_pb2.DOMAIN_LIFECYCLE, domain_json=b"{}"),
                  notify_pb2.DomainEvent(sequence=2, type=notify_pb2.DOMAIN_LIFECYCLE, domain_json=b"{not json"),
                  notify_pb2.DomainEvent(sequence=3, type=77),
                  notify_pb2.DomainEvent(sequence=4, type=notify_pb2.DOMAIN_LIFECYCLE, domain_json=b"{}")]
        resent = [*events[2:], notify_pb2.DomainEvent(sequence=5, type=notify_pb2.DOMAIN_LIFECYCLE)]
        try:
            async with grpc.aio.insecure_channel(unix_target(socket)) as channel:
                messages = [notify_pb2.LauncherMessage(hello=notify_pb2.Hello(launcher_uid="batch-1")),
                            notify_pb2.LauncherMessage(batch=notify_pb2.EventBatch(events=events)),
                            notify_pb2.LauncherMessage(batch=notify_pb2.EventBatch(events=resent))]
                replies = [reply async for reply in notify_pb2_grpc.NotifyStub(channel).Events(iter(messages))]
        finally:
            await server.stop(None)
        kinds = [(r.WhichOneof("payload"), getattr(r, r.WhichOneof("payload")).sequence) for r in replies]
        assert kinds == [("resume_from", 0), ("rejected", 2), ("rejected", 3), ("ack", 4), ("ack", 5)]
        assert "unsupported event type 77" in replies[2].rejected.reason
        assert sink.sequences == [1, 4, 5]  # the resent 3 and 4 are not applied twice

    asyncio.run(scenario())


def test_a_held_hello_waits_for_announce(sockdir: Path) -> None:
    """The launcher dials its stream while it starts, but the handler must see the Hello
    (its "Cmd serves") only once Cmd does."""
    async def scenario() -> None:
        socket = sockdir / "notify.sock"
        hellos: list[str] = []
        server, _ = await start_server([
            service(notify_pb2, "Notify", notify_pb2_grpc.add_NotifyServicer_to_server,
                    NotifyServicer(Sink(), on_hello=lambda hello: hellos.append(hello.vmi_name))),
            info_service("NotifyInfo", SUPPORTED_NOTIFY_VERSIONS),
        ], unix_socket=socket)
        notifier = DomainNotifier(socket, HELLO, hold_hello=True)
        notifier.start()
        try:
            await asyncio.sleep(0.3)
            assert hellos == []
            notifier.announce()
            async with asyncio.timeout(10):
                while not hellos:
                    await asyncio.sleep(0.01)
            assert hellos == ["testvmi"]
        finally:
            await notifier.close()
            await server.stop(None)

    asyncio.run(scenario())
