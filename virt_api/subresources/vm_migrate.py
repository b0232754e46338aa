"""PUT virtualmachines/{name}/migrate: a VirtualMachineInstanceMigration for the VM's
running VMI, named as upstream names them; the migration controller does the rest."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubevirt_api.groups import API_VERSION, MIGRATION
from kubevirt_api.objects import vmi_phase
from kubevirt_api.phases import VMIPhase
from virt_api.subresources.context import Context
from virt_api.subresources.options import read_options
from virt_api.subresources.status import VM, VM_NOT_RUNNING, conflict

Obj = dict[str, Any]

GENERATE_NAME = "kubevirt-migrate-vm-"


async def migrate(ctx: Context, request: web.Request) -> web.Response:
    options = await read_options(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    await ctx.kube.vm(namespace, name)
    vmi = await ctx.kube.vmi(namespace, name)
    if vmi_phase(vmi) != VMIPhase.RUNNING:
        raise conflict(VM, name, VM_NOT_RUNNING)
    spec: Obj = {"vmiName": name}
    if options.added_node_selector:
        spec["addedNodeSelector"] = options.added_node_selector
    body = {"apiVersion": API_VERSION, "kind": MIGRATION.kind,
            "metadata": {"generateName": GENERATE_NAME, "namespace": namespace}, "spec": spec}
    await ctx.kube.create_migration(namespace, body, options.dry_run)
    return web.Response(status=202)
