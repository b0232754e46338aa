"""GET virtualmachineinstances/{name}/console: the guest's serial console as a websocket.

As upstream: subprotocol plain.kubevirt.io, raw bytes in binary frames both ways.
virt-api opens NodeService.Console on the handler of the VMI's node and waits for its
attach acknowledgement before upgrading the client, so a missing or unreachable
console is an HTTP error (a Status), not a websocket that closes at once. Then bytes
are relayed message by message, each write awaited (no unbounded buffering), until
either side ends. The close code tells the client why, as virtctl reads it: 1000 the
console ended, 1001 another session took over, 1011 the handler failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc
from aiohttp import WSCloseCode, WSMsgType, web

from kubevirt_api.objects import vmi_phase
from kubevirt_api.phases import VMIPhase
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from virt_api.subresources.context import Context
from virt_api.subresources.node_handler import handler_failed, node_service
from virt_api.subresources.status import VMI, VMI_NOT_RUNNING, StatusError, bad_request, conflict, internal
from virt_api.subresources.vmi_target import checked_vmi, vmi_name, vmi_node, vmi_ref

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SUBPROTOCOL = "plain.kubevirt.io"
ATTACH_SECONDS = 30.0
# Pings keep an idle console alive through proxies and notice a vanished client.
HEARTBEAT_SECONDS = 30.0
# After the client leaves, how long the handler gets to end its side cleanly.
WIND_DOWN_SECONDS = 5.0
TAKEN_OVER = "another user connected to the console of the target vm"
_CALL_ENDED = (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError)


def _consolable(vmi: Obj) -> None:
    devices = (((vmi.get("spec") or {}).get("domain") or {}).get("devices") or {})
    if devices.get("autoattachSerialConsole") is False:
        raise bad_request("No serial consoles are present.")
    if vmi_phase(vmi) == VMIPhase.FAILED:
        raise conflict(VMI, vmi_name(vmi), "VMI is in failed status")
    if vmi_phase(vmi) != VMIPhase.RUNNING:
        raise bad_request(VMI_NOT_RUNNING)


async def console(ctx: Context, request: web.Request) -> web.StreamResponse:
    vmi = await checked_vmi(ctx, request, _consolable)
    node = vmi_node(vmi)
    socket = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=HEARTBEAT_SECONDS)
    if not socket.can_prepare(request).ok:
        # Checked before attaching: attaching would end whichever session holds the console.
        raise bad_request("the console is a websocket: the request must ask to upgrade the connection")
    async with node_service(ctx, node) as stub:
        call = stub.Console()
        try:
            await _attach(call, vmi, node)
            await socket.prepare(request)
            log.info("console of VMI %s/%s open", request.match_info["namespace"], vmi_name(vmi))
            await _bridge(socket, call)
            return socket
        finally:
            call.cancel()


async def _attach(call: grpc.aio.StreamStreamCall, vmi: Obj, node: str) -> None:
    try:
        await call.write(pb.ConsoleInput(open=vmi_ref(vmi)))
        first = await asyncio.wait_for(call.read(), ATTACH_SECONDS)
    except TimeoutError:
        raise internal(f"virt-handler on node {node} did not attach the console in {ATTACH_SECONDS:.0f}s") from None
    except _CALL_ENDED:
        raise await _attach_failed(call, node) from None
    if first is grpc.aio.EOF:
        raise internal(f"virt-handler on node {node} ended the console before attaching it")


async def _attach_failed(call: grpc.aio.StreamStreamCall, node: str) -> StatusError:
    code, details = await call.code(), await call.details()
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return bad_request(details or code.name)  # no serial console socket on that node (yet)
    return handler_failed(code, details, node)


async def _bridge(socket: web.WebSocketResponse, call: grpc.aio.StreamStreamCall) -> None:
    to_guest = asyncio.create_task(_client_to_guest(socket, call))
    to_client = asyncio.create_task(_guest_to_client(socket, call))
    try:
        done, _ = await asyncio.wait({to_guest, to_client}, return_when=asyncio.FIRST_COMPLETED)
        if to_client not in done:  # the client left and said so to the handler: let it finish
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(to_client), WIND_DOWN_SECONDS)
    finally:
        for task in (to_guest, to_client):
            task.cancel()
        await asyncio.gather(to_guest, to_client, return_exceptions=True)
    code, message = await _close_reason(call)
    await socket.close(code=code, message=message.encode()[:120])


async def _client_to_guest(socket: web.WebSocketResponse, call: grpc.aio.StreamStreamCall) -> None:
    try:
        async for message in socket:
            if message.type == WSMsgType.BINARY:
                await call.write(pb.ConsoleInput(data=message.data))
            elif message.type == WSMsgType.TEXT:
                await call.write(pb.ConsoleInput(data=message.data.encode()))
            else:
                break  # an error on the client's connection
        await call.done_writing()
    except _CALL_ENDED:
        pass  # the handler's side ended first; _guest_to_client reports it


async def _guest_to_client(socket: web.WebSocketResponse, call: grpc.aio.StreamStreamCall) -> None:
    try:
        while (output := await call.read()) is not grpc.aio.EOF:
            if output.data:
                await socket.send_bytes(output.data)
    except _CALL_ENDED:
        pass
    except ConnectionError:
        pass  # the client is gone


async def _close_reason(call: grpc.aio.StreamStreamCall) -> tuple[int, str]:
    if not call.done():
        call.cancel()
    code = await call.code()
    if code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
        return WSCloseCode.OK, ""
    if code == grpc.StatusCode.ABORTED:
        return WSCloseCode.GOING_AWAY, TAKEN_OVER
    return WSCloseCode.INTERNAL_ERROR, await call.details() or code.name
