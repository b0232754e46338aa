"""PUT virtualmachineinstances/{name}/pause|unpause|softreboot|reset and GET guestosinfo:
checked against the VMI as upstream checks it, then forwarded to the virt-handler of
the VMI's node over NodeService (mutual TLS), which drives the VMI's launcher."""

from __future__ import annotations

import json
from typing import Any

import grpc
from aiohttp import web

from kubevirt_api.objects import condition, condition_true, vmi_phase
from kubevirt_api.phases import VMIConditionType, VMIPhase
from virt_api.subresources.context import Context
from virt_api.subresources.guard import Handler
from virt_api.subresources.node_handler import handler_failed, node_service
from virt_api.subresources.options import read_options
from virt_api.subresources.status import VM_NOT_RUNNING, VMI, VMI_NOT_RUNNING, conflict, forbidden, internal
from virt_api.subresources.vmi_target import Check, checked_vmi, vmi_name, vmi_node, vmi_ref

Obj = dict[str, Any]

# Every NodeService call is bounded: a hung handler must not hold the client forever.
CALL_SECONDS = 60.0


def _running(message: str) -> Check:
    def check(vmi: Obj) -> None:
        if vmi_phase(vmi) != VMIPhase.RUNNING:
            raise conflict(VMI, vmi_name(vmi), message)
    return check


def _pausable(vmi: Obj) -> None:
    _running(VM_NOT_RUNNING)(vmi)
    if (vmi.get("spec") or {}).get("livenessProbe") is not None:
        raise forbidden(VMI, vmi_name(vmi), "Pausing VMIs with LivenessProbe is currently not supported")
    if condition_true(vmi, VMIConditionType.PAUSED.value):
        raise conflict(VMI, vmi_name(vmi), "VMI is already paused")
    migration = (vmi.get("status") or {}).get("migrationState") or {}
    if migration and not migration.get("completed"):
        raise conflict(VMI, vmi_name(vmi), f"Cannot pause VM '{vmi_name(vmi)}' because it is currently being migrated")


def _unpausable(vmi: Obj) -> None:
    _running(VMI_NOT_RUNNING)(vmi)
    if not condition_true(vmi, VMIConditionType.PAUSED.value):
        raise conflict(VMI, vmi_name(vmi), "VMI is not paused")


def _rebootable(vmi: Obj) -> None:
    _running(VM_NOT_RUNNING)(vmi)
    if condition_true(vmi, VMIConditionType.PAUSED.value):
        raise conflict(VMI, vmi_name(vmi), "VMI is paused")
    acpi = (((vmi.get("spec") or {}).get("domain") or {}).get("features") or {}).get("acpi") or {}
    if condition(vmi, VMIConditionType.AGENT_CONNECTED.value) is None and acpi.get("enabled") is False:
        raise conflict(VMI, vmi_name(vmi), "VMI neither have the agent connected nor the ACPI feature enabled")


def _resettable(vmi: Obj) -> None:
    phase = vmi_phase(vmi)
    if phase != VMIPhase.RUNNING:
        raise conflict(VMI, vmi_name(vmi), f"Failed to reset non-running VMI with phase {phase.value or 'Unset'}")


def _agent_connected(vmi: Obj) -> None:
    _running(VMI_NOT_RUNNING)(vmi)
    if condition(vmi, VMIConditionType.AGENT_CONNECTED.value) is None:
        raise conflict(VMI, vmi_name(vmi), "VMI does not have guest agent connected")


def _lifecycle(rpc: str, check: Check) -> Handler:
    async def handle(ctx: Context, request: web.Request) -> web.Response:
        options = await read_options(request)
        vmi = await checked_vmi(ctx, request, check)
        node = vmi_node(vmi)
        if options.dry_run:
            return web.Response(status=200)
        async with node_service(ctx, node) as stub:
            try:
                answer = await getattr(stub, rpc)(vmi_ref(vmi), timeout=CALL_SECONDS)
            except grpc.aio.AioRpcError as error:
                raise handler_failed(error.code(), error.details(), node) from None
        if not answer.success:
            raise internal(answer.message)
        return web.Response(status=200)
    return handle


pause = _lifecycle("Pause", _pausable)
unpause = _lifecycle("Unpause", _unpausable)
soft_reboot = _lifecycle("SoftReboot", _rebootable)
reset = _lifecycle("Reset", _resettable)


async def guest_os_info(ctx: Context, request: web.Request) -> web.Response:
    vmi = await checked_vmi(ctx, request, _agent_connected)
    node = vmi_node(vmi)
    async with node_service(ctx, node) as stub:
        try:
            answer = await stub.GuestOSInfo(vmi_ref(vmi), timeout=CALL_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise handler_failed(error.code(), error.details(), node) from None
    if not answer.response.success:
        raise internal(answer.response.message)
    try:
        info = json.loads(answer.guest_os_info_json or b"{}")
    except ValueError as error:
        raise internal(f"virt-handler answered guest OS info that is not JSON: {error}") from None
    return web.json_response(info)
