"""PUT virtualmachines/{name}/start|stop|restart, with upstream's semantics.

Which field changes depends on the run strategy, as upstream decides it:
  start    Halted: runStrategy Always (or a paused-start request); Manual, RerunOnFailure:
           a Start request (after a Stop of a finished VMI); Always, Once: refused
  stop     Always, Once: runStrategy Halted; Manual, RerunOnFailure: a Stop request;
           Halted: only to cut a running VMI's grace period short
  restart  Stop(current VMI) then Start requests; Halted, Once: refused
virt-controller acts on runStrategy and status.stateChangeRequests; all answer 202.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubevirt_api.objects import SpecError, run_strategy, vmi_phase
from kubevirt_api.phases import RunStrategy, VMIPhase
from virt_api.subresources.context import Context
from virt_api.subresources.options import Options, read_options
from virt_api.subresources.state_change import (change_requests_patch, running_patch, start_request,
                                                 stop_request)
from virt_api.subresources.status import VM, VM_NOT_RUNNING, bad_request, conflict, internal

Obj = dict[str, Any]

# A forced restart deletes the launcher pod with the shortest grace that is still safe.
FORCED_RESTART_POD_GRACE = 1


def _accepted() -> web.Response:
    return web.Response(status=202)


def _strategy(vm: Obj) -> RunStrategy:
    try:
        return run_strategy(vm)
    except SpecError as error:
        raise internal(str(error)) from None


def _active(vmi: Obj | None) -> bool:
    """A VMI that is on its way or running: not finished, not of unknown state."""
    return vmi is not None and vmi_phase(vmi) not in (VMIPhase.SUCCEEDED, VMIPhase.FAILED, VMIPhase.UNKNOWN,
                                                      VMIPhase.UNSET)


def _uid(vmi: Obj) -> str:
    return str(vmi["metadata"]["uid"])


async def _vm_and_vmi(ctx: Context, request: web.Request) -> tuple[str, str, Obj, Obj | None]:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    vm = await ctx.kube.vm(namespace, name)
    return namespace, name, vm, await ctx.kube.vmi_or_none(namespace, name)


# --- start ----------------------------------------------------------------------------

async def start(ctx: Context, request: web.Request) -> web.Response:
    options = await read_options(request)
    namespace, name, vm, vmi = await _vm_and_vmi(ctx, request)
    if _active(vmi):
        raise conflict(VM, name, "VM is already running")
    strategy = _strategy(vm)
    if strategy == RunStrategy.HALTED:
        await _start_halted(ctx, namespace, name, vm, options)
    elif strategy in (RunStrategy.MANUAL, RunStrategy.RERUN_ON_FAILURE):
        changes = _start_requests(name, strategy, vmi, options.paused)
        await ctx.kube.patch_vm_status(namespace, name, change_requests_patch(vm, changes), options.dry_run)
    else:
        raise conflict(VM, name, f"{strategy.value} does not support manual start requests")
    return _accepted()


async def _start_halted(ctx: Context, namespace: str, name: str, vm: Obj, options: Options) -> None:
    template_spec = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    if options.paused and template_spec.get("startStrategy") != "Paused":
        # A paused start is a request: the controller starts it paused and updates the strategy.
        patch = change_requests_patch(vm, [start_request(paused=True)])
        await ctx.kube.patch_vm_status(namespace, name, patch, options.dry_run)
    else:
        await ctx.kube.patch_vm(namespace, name, running_patch(vm, True), options.dry_run)


def _start_requests(name: str, strategy: RunStrategy, vmi: Obj | None, paused: bool) -> list[Obj]:
    if vmi is None:
        return [start_request(paused)]
    phase = vmi_phase(vmi)
    if strategy == RunStrategy.RERUN_ON_FAILURE and phase == VMIPhase.FAILED:
        raise conflict(VM, name, f"{strategy.value} does not support starting VM from failed state")
    ended = phase == VMIPhase.SUCCEEDED if strategy == RunStrategy.RERUN_ON_FAILURE else phase.is_final
    if ended:
        return [stop_request(_uid(vmi)), start_request(paused)]  # the finished VMI goes first
    return [start_request(paused)]


# --- stop -----------------------------------------------------------------------------

async def stop(ctx: Context, request: web.Request) -> web.Response:
    options = await read_options(request)
    namespace, name, vm, vmi = await _vm_and_vmi(ctx, request)
    strategy = _strategy(vm)
    if strategy in (RunStrategy.ALWAYS, RunStrategy.ONCE):
        await _shorten_grace_period(ctx, vmi, options)
        await ctx.kube.patch_vm(namespace, name, running_patch(vm, False), options.dry_run)
        return _accepted()
    if strategy not in (RunStrategy.HALTED, RunStrategy.MANUAL, RunStrategy.RERUN_ON_FAILURE):
        raise conflict(VM, name, f"{strategy.value} does not support manual stop requests")
    if vmi is None or vmi_phase(vmi).is_final:
        raise conflict(VM, name, VM_NOT_RUNNING)
    if strategy == RunStrategy.HALTED and not _shortens_grace(vmi, options.grace_period):
        raise conflict(VM, name, f"{strategy.value} only supports manual stop requests with a shorter graceperiod")
    await _shorten_grace_period(ctx, vmi, options)
    await ctx.kube.patch_vm_status(namespace, name, change_requests_patch(vm, [stop_request(_uid(vmi))]),
                                   options.dry_run)
    return _accepted()


def _shortens_grace(vmi: Obj, grace_period: int | None) -> bool:
    """A Halted VM is already stopping; a stop can only make that quicker."""
    if grace_period is None:
        return False
    current = (vmi.get("spec") or {}).get("terminationGracePeriodSeconds")
    return current is None or grace_period < int(current)


async def _shorten_grace_period(ctx: Context, vmi: Obj | None, options: Options) -> None:
    """StopOptions.gracePeriod goes onto the VMI, whose handler honours it while stopping."""
    if options.grace_period is None or vmi is None or vmi_phase(vmi).is_final:
        return
    if options.grace_period < 0:
        raise bad_request("gracePeriod has to be greater or equal to 0")
    spec = vmi.get("spec") or {}
    path = "/spec/terminationGracePeriodSeconds"
    operations = [{"op": "test", "path": path, "value": spec["terminationGracePeriodSeconds"]},
                  {"op": "replace", "path": path, "value": options.grace_period}] \
        if spec.get("terminationGracePeriodSeconds") is not None else \
        [{"op": "add", "path": path, "value": options.grace_period}]
    meta = vmi["metadata"]
    await ctx.kube.patch_vmi(meta["namespace"], meta["name"], operations, options.dry_run)


# --- restart --------------------------------------------------------------------------

async def restart(ctx: Context, request: web.Request) -> web.Response:
    options = await read_options(request)
    grace = options.grace_period_seconds
    if grace is not None and grace > 0:
        raise bad_request("For force restart, only gracePeriod=0 is supported for now")
    if grace is not None and grace < 0:
        raise bad_request("gracePeriod has to be greater or equal to 0")
    namespace, name, vm, vmi = await _vm_and_vmi(ctx, request)
    strategy = _strategy(vm)
    if strategy in (RunStrategy.HALTED, RunStrategy.ONCE):
        raise conflict(VM, name, f"RunStategy {strategy.value} does not support manual restart requests")
    if vmi is None:
        raise conflict(VM, name, f"{VM_NOT_RUNNING}: {RunStrategy.HALTED.value}")
    patch = change_requests_patch(vm, [stop_request(_uid(vmi)), start_request()])
    await ctx.kube.patch_vm_status(namespace, name, patch, options.dry_run)
    if grace == 0 and not options.dry_run:
        await _force_restart(ctx, namespace, vmi)
    return _accepted()


async def _force_restart(ctx: Context, namespace: str, vmi: Obj) -> None:
    """CRDs take no grace period on delete: deleting the launcher pod is what is quick."""
    pods = await ctx.kube.running_launcher_pods(namespace, _uid(vmi))
    target = ((vmi.get("status") or {}).get("migrationState") or {}).get("targetPod")
    chosen = next((p for p in pods if p["metadata"]["name"] == target), pods[0] if pods else None)
    if chosen is not None:
        await ctx.kube.delete_pod(namespace, chosen["metadata"]["name"], FORCED_RESTART_POD_GRACE)
