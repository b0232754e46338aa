"""Reaching the virt-handler of a VMI's node: its pod (namespace kubevirt, label
kubevirt.io=virt-handler, on status.nodeName), its pod IP and NodeService port, and a
mutual-TLS gRPC channel that checks the handler's certificate against its node name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from kubevirt_api.labels import APP_LABEL
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from virt_api.subresources.context import Context
from virt_api.subresources.status import StatusError, internal, unavailable

Obj = dict[str, Any]

VIRT_HANDLER = "virt-handler"
NODE_SERVICE_PORT = 8186
NODE_SERVICE_PORT_NAME = "node-service"


@dataclass(frozen=True)
class NodeHandler:
    node: str
    address: str
    port: int

    @property
    def target(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def _port(pod: Obj) -> int:
    """The NodeService port the handler's pod declares; upstream's fixed 8186 otherwise."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == NODE_SERVICE_PORT_NAME and port.get("containerPort"):
                return int(port["containerPort"])
    return NODE_SERVICE_PORT


def _usable(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and status.get("phase") == "Running" \
        and not (pod.get("metadata") or {}).get("deletionTimestamp")


async def find_handler(ctx: Context, node: str) -> NodeHandler:
    pods = await ctx.kube.pods(ctx.handler_namespace, f"{APP_LABEL}={VIRT_HANDLER}", f"spec.nodeName={node}")
    usable = [pod for pod in pods if _usable(pod)]
    if not usable:
        raise unavailable(f"no running virt-handler found on node {node}")
    pod = usable[0]
    return NodeHandler(node, pod["status"]["podIP"], _port(pod))


@contextlib.asynccontextmanager
async def node_service(ctx: Context, node: str) -> AsyncIterator[pb_grpc.NodeServiceStub]:
    """A NodeService stub for ``node``'s handler, for the length of one request."""
    handler = await find_handler(ctx, node)
    # The handler's certificate names its node; its pod IP may not be among its addresses.
    options = [("grpc.ssl_target_name_override", handler.node)]
    async with grpc.aio.secure_channel(handler.target, ctx.handler_credentials, options=options) as channel:
        yield pb_grpc.NodeServiceStub(channel)


def handler_failed(code: grpc.StatusCode, details: str | None, node: str) -> StatusError:
    """A failed NodeService call as the Status virt-api answers."""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return unavailable(f"unable to reach virt-handler on node {node}: {details or code.name}")
    return internal(f"virt-handler on node {node}: {details or code.name}")
