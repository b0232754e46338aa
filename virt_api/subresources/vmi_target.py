"""The VMI a VMI subresource acts on: fetched, checked the way that subresource requires,
and named for NodeService (namespace, name, uid) on the node that runs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from virt_api.subresources.context import Context
from virt_api.subresources.status import VMI, VMI_NOT_RUNNING, conflict

Obj = dict[str, Any]
# Raises the StatusError that says why the subresource cannot act on this VMI now.
Check = Callable[[Obj], None]


async def checked_vmi(ctx: Context, request: web.Request, check: Check) -> Obj:
    vmi = await ctx.kube.vmi(request.match_info["namespace"], request.match_info["name"])
    check(vmi)
    return vmi


def vmi_name(vmi: Obj) -> str:
    return str(vmi["metadata"]["name"])


def vmi_ref(vmi: Obj) -> pb.VMIRef:
    meta = vmi["metadata"]
    return pb.VMIRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


def vmi_node(vmi: Obj) -> str:
    node = (vmi.get("status") or {}).get("nodeName")
    if not node:
        raise conflict(VMI, vmi_name(vmi), VMI_NOT_RUNNING)
    return str(node)
