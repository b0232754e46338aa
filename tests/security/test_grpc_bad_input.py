"""Malformed and oversized messages on Cmd, Notify and NodeService: each is refused with a
clear status or a reason naming the field, never a traceback, and the server still
answers a valid call afterwards.

Raw bytes go through channels with identity serializers, so nothing on the client side
checks or fixes them. The servers are the real servicers: the launcher's CmdServicer on
libvirt's in-process test driver, the Notify server with virt-handler's own event sink,
and NodeService behind the cluster CA's mutual TLS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import libvirt
import pytest
from kubernetes import client

import pki
from grpc_support.limits import MAX_MESSAGE_BYTES
from grpc_support.server import service, start_server
from grpc_support.unix import unix_target
from kubevirt_grpc.cmd.v1 import cmd_pb2, cmd_pb2_grpc
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc
from pki.cluster_ca import channel_credentials, server_credentials
from virt_handler.node_service import NodeServiceServicer
from virt_handler.notify_server import NotifyServicer
from virt_handler.vmi_sync import VMISync
from virt_launcher.cmd_server import CmdServicer
from virt_launcher.domain_manager import DomainManager
from virt_launcher.migration import MigrationController

GARBAGE = [b"\xff\xff\xff\xff", bytes(range(256)), b"\x0a\xff\xff\xff\xff\x0f"]
OVERSIZED = b"\x0a" + b"\x00" * (MAX_MESSAGE_BYTES + 1024)
DEEP = b"[" * 200_000 + b"]" * 200_000


def _identity(data: bytes) -> bytes:
    return data


def _clean(details: str | None) -> str:
    text = details or ""
    assert text and "Traceback" not in text and 'File "' not in text, text
    return text


async def _refused(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value
    return _clean(caught.value.details())


# --- Cmd ---------------------------------------------------------------------------------

@asynccontextmanager
async def _launcher(sockdir: Path) -> AsyncIterator[grpc.aio.Channel]:
    connection = libvirt.open("test:///default")
    manager = DomainManager(connection, sockdir / "work", lambda *args, **kwargs: {}, "test")
    socket = sockdir / "uid-1" / "launcher.sock"
    migration = MigrationController(manager, socket.parent, None, on_status=lambda state: None,
                                    on_finalized=lambda: None)
    server, _ = await start_server([service(cmd_pb2, "Cmd", cmd_pb2_grpc.add_CmdServicer_to_server,
                                            CmdServicer(manager, migration=migration))], unix_socket=socket)
    try:
        async with grpc.aio.insecure_channel(unix_target(socket)) as channel:
            yield channel
    finally:
        await server.stop(None)
        await migration.close()
        connection.close()


def _vmi_request(vmi_json: bytes) -> cmd_pb2.VMIRequest:
    return cmd_pb2.VMIRequest(vmi=cmd_pb2.VMI(vmi_json=vmi_json))


def test_cmd_refuses_garbage_oversized_and_malformed_vmis(sockdir: Path) -> None:
    async def scenario() -> None:
        async with _launcher(sockdir) as channel:
            raw = channel.unary_unary("/kubevirt.cmd.v1.Cmd/SyncVirtualMachine",
                                      request_serializer=_identity, response_deserializer=_identity)
            for body in GARBAGE:
                details = await _refused(raw(body, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
                assert "kubevirt.cmd.v1.VMIRequest" in details
            details = await _refused(raw(OVERSIZED, timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "larger than max" in details

            stub = cmd_pb2_grpc.CmdStub(channel)
            # The Cmd contract answers a bad VMI in Response (success=False, a message naming
            # the field), which the handler copies into the VMI's status.
            bad = {b"[1, 2]": "vmi: expected a VirtualMachineInstance with a spec",
                   b'"a string"': "vmi: expected a VirtualMachineInstance with a spec",
                   b'{"spec": [1]}': "vmi: expected a VirtualMachineInstance with a spec",
                   b"{not json": "vmi: the VMI is not valid JSON",
                   DEEP: "vmi: the VMI's JSON is nested too deeply",
                   b'{"metadata": 5, "spec": {}}': "vmi: metadata must be an object, not int",
                   b'{"metadata": {}, "spec": {"domain": "x"}}': "vmi: spec.domain must be an object, not str"}
            for vmi_json, reason in bad.items():
                for call in (stub.SyncVirtualMachine, stub.SyncMigrationTarget):
                    reply = await call(_vmi_request(vmi_json), timeout=10)
                    assert not reply.success and reason in reply.message, (vmi_json[:40], reply)
                    _clean(reply.message)
            # A wire-level wrong type (field 1 as a varint) parses as an unknown field: an empty VMI.
            reply = cmd_pb2.Response.FromString(await raw(b"\x08\x01", timeout=10))
            assert not reply.success and reply.message.startswith("vmi:")
            assert (await stub.Ping(cmd_pb2.EmptyRequest(), timeout=10)).success

    asyncio.run(scenario())


# --- Notify ------------------------------------------------------------------------------

HELLO = notify_pb2.LauncherMessage(hello=notify_pb2.Hello(vmi_namespace="default", vmi_name="v",
                                                          vmi_uid="uid-1", launcher_uid="launcher-1"))


def _event(sequence: int, domain_json: bytes) -> notify_pb2.LauncherMessage:
    return notify_pb2.LauncherMessage(event=notify_pb2.DomainEvent(
        sequence=sequence, type=notify_pb2.DOMAIN_LIFECYCLE, domain_json=domain_json))


def test_notify_rejects_malformed_domains_with_the_handlers_own_sink(sockdir: Path) -> None:
    sync = VMISync(client.ApiClient(), "node01", sockdir)  # only its event sink is used: nothing starts

    async def scenario() -> None:
        socket = sockdir / "notify.sock"
        server, _ = await start_server([service(notify_pb2, "Notify", notify_pb2_grpc.add_NotifyServicer_to_server,
                                                NotifyServicer(sync._domain_event))], unix_socket=socket)
        try:
            async with grpc.aio.insecure_channel(unix_target(socket)) as channel:
                bad = [b"[1]", b'"x"', b"{not json", DEEP, b'{"status": [1]}', b'{"spec": "x"}']
                good = json.dumps({"status": {"status": "Running", "reason": "Unknown"}}).encode()
                messages = [HELLO, *[_event(i + 1, body) for i, body in enumerate(bad)], _event(len(bad) + 1, good)]
                replies = [reply async for reply in notify_pb2_grpc.NotifyStub(channel).Events(iter(messages))]
                kinds = [reply.WhichOneof("payload") for reply in replies]
                assert kinds == ["resume_from", *["rejected"] * len(bad), "ack"]
                for reply in replies[1:-1]:
                    assert reply.rejected.reason.startswith("domain_json:"), reply
                    _clean(reply.rejected.reason)

                raw = channel.stream_stream("/kubevirt.notify.v1.Notify/Events",
                                            request_serializer=_identity, response_deserializer=_identity)
                # Undecodable bytes in a stream: refused naming the message type; the stream
                # ends, the server does not.
                for body in GARBAGE:
                    call = raw(iter([HELLO.SerializeToString(), body]), timeout=10)
                    assert notify_pb2.HandlerMessage.FromString(await call.read()).HasField("resume_from")
                    details = await _refused(call.read(), grpc.StatusCode.INVALID_ARGUMENT)
                    assert "kubevirt.notify.v1.LauncherMessage" in details
                call = raw(iter([OVERSIZED]), timeout=30)
                details = await _refused(call.read(), grpc.StatusCode.RESOURCE_EXHAUSTED)
                assert "larger than max" in details
                again = [HELLO, _event(len(bad) + 2, good)]
                replies = [reply async for reply in notify_pb2_grpc.NotifyStub(channel).Events(iter(again))]
                assert [reply.WhichOneof("payload") for reply in replies] == ["resume_from", "ack"]
        finally:
            await server.stop(None)

    asyncio.run(scenario())
    assert sync._domains["default/v"]["status"]["status"] == "Running"  # only the good event landed


# --- NodeService -------------------------------------------------------------------------

@asynccontextmanager
async def _node_service(sockdir: Path) -> AsyncIterator[Callable[[str], grpc.aio.Channel]]:
    ca = pki.new_ca("test-cluster-ca")
    servicer = NodeServiceServicer("node01", "qemu", sockdir, lambda: 0, heartbeat_seconds=0.05)
    server, port = await start_server([service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server,
                                               servicer)], tcp_address="127.0.0.1:0",
                                      credentials=server_credentials(ca, "node01"))
    try:
        yield lambda name: grpc.aio.secure_channel(f"127.0.0.1:{port}", channel_credentials(ca, name))
    finally:
        await server.stop(None)


def test_nodeservice_refuses_garbage_oversized_and_escaping_uids(sockdir: Path) -> None:
    async def scenario() -> None:
        async with _node_service(sockdir) as connect, connect("virt-api") as channel:
            raw = channel.unary_unary("/kubevirt.nodeservice.v1.NodeService/Pause",
                                      request_serializer=_identity, response_deserializer=_identity)
            for body in GARBAGE:
                details = await _refused(raw(body, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
                assert "kubevirt.nodeservice.v1.VMIRef" in details
            details = await _refused(raw(OVERSIZED, timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "larger than max" in details
            # uid (field 3) sent as a varint: an unknown field, so the uid is missing.
            details = await _refused(raw(b"\x18\x01", timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
            assert details.startswith("uid:")

            stub = pb_grpc.NodeServiceStub(channel)
            for uid in ("../other-uid", "a/../../b", "..", "/abs", "x" * 200):
                ref = pb.VMIRef(namespace="default", name="v", uid=uid)
                for call in (stub.Pause, stub.Reset, stub.GuestOSInfo):
                    details = await _refused(call(ref, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
                    assert details.startswith("uid:"), details
                console = stub.Console(iter([pb.ConsoleInput(open=ref)]), timeout=10)
                details = await _refused(console.read(), grpc.StatusCode.INVALID_ARGUMENT)
                assert details.startswith("open.uid:"), details

            # Undecodable messages in a request stream, read through context.read().
            for method, message in (("Console", "ConsoleInput"), ("MigrationTunnel", "TunnelFrame")):
                streamed = channel.stream_stream(f"/kubevirt.nodeservice.v1.NodeService/{method}",
                                                 request_serializer=_identity, response_deserializer=_identity)
                for body in GARBAGE:
                    details = await _refused(streamed(iter([body]), timeout=10).read(),
                                             grpc.StatusCode.INVALID_ARGUMENT)
                    assert f"kubevirt.nodeservice.v1.{message}" in details, details

            missing = await stub.Pause(pb.VMIRef(namespace="default", name="v", uid="no-such-uid"), timeout=10)
            assert not missing.success and "has no launcher" in missing.message
            beats = stub.Heartbeats(pb.HeartbeatRequest(client="test"), timeout=10)
            assert (await beats.read()).node_name == "node01"
            beats.cancel()

    asyncio.run(scenario())
