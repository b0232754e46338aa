"""NodeService: what the controller, virt-api and peer handlers ask of this node's handler.

Lifecycle calls are forwarded to the VMI's launcher over Cmd; the console is bridged to
the guest's serial socket (virt_handler.console). MigrationTunnel relays a migration's
channels to the target launcher (virt_handler.migration_tunnel); PrepareMigrationTarget
belongs to later work and answers UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from kubevirt_api.pod_layout import launcher_socket
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from oci_layout.rooted_paths import UnsafePath, pod_uid
from virt_handler.cmd_client import LauncherClient, LauncherError
from virt_handler.console import SerialConsoles
from virt_handler.migration_tunnel import TargetRegistry, TunnelTarget

SUPPORTED_NODESERVICE_VERSIONS = (1,)
HEARTBEAT_SECONDS = 5.0


class NodeServiceServicer(pb_grpc.NodeServiceServicer):
    def __init__(self, node_name: str, emulation: str, sockets_dir: Path, running_vmis: Any,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self._node = node_name
        self._emulation = emulation
        self._sockets = Path(sockets_dir)
        self._running_vmis = running_vmis  # () -> int
        self._interval = heartbeat_seconds
        self.consoles = SerialConsoles(node_name, self._sockets)
        # Filled by whoever prepares a migration target on this node; read by MigrationTunnel.
        self.migration_targets = TargetRegistry()
        self.tunnels = TunnelTarget(self.migration_targets)

    async def Heartbeats(self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
                         ) -> AsyncIterator[pb.Heartbeat]:
        while True:
            yield pb.Heartbeat(node_name=self._node, timestamp_unix_nano=time.time_ns(), schedulable=True,
                               emulation=self._emulation, running_vmis=int(self._running_vmis()))
            await asyncio.sleep(self._interval)

    async def Console(self, request_iterator: AsyncIterator[pb.ConsoleInput],
                      context: grpc.aio.ServicerContext) -> None:
        # The reader/writer API (context.read/write), not the iterators: see virt_handler.console.
        await self.consoles.serve(context)

    async def MigrationTunnel(self, request_iterator: AsyncIterator[pb.TunnelFrame],
                              context: grpc.aio.ServicerContext) -> None:
        # The reader/writer API, as Console: see virt_handler.migration_tunnel.
        await self.tunnels.serve(context)

    async def _launcher_socket(self, ref: pb.VMIRef, context: grpc.aio.ServicerContext) -> Path:
        # The uid becomes a directory name under the shared sockets directory: one with a
        # "/" or ".." would reach a socket that is not this VMI's launcher.
        try:
            uid = pod_uid(ref.uid) if ref.uid else ""
        except UnsafePath as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"uid: {error}")
        if not uid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "uid: required to find the VMI's launcher")
        return Path(launcher_socket(uid, str(self._sockets)))

    async def _forward(self, ref: pb.VMIRef, action: str, context: grpc.aio.ServicerContext) -> pb.LifecycleResponse:
        socket = await self._launcher_socket(ref, context)
        if not socket.exists():
            return pb.LifecycleResponse(success=False, message=f"VMI {ref.namespace}/{ref.name} has no launcher "
                                                                f"on node {self._node}")
        vmi = {"metadata": {"namespace": ref.namespace, "name": ref.name, "uid": ref.uid}, "spec": {}}
        async with await LauncherClient.connect(socket, timeout=30) as launcher:
            try:
                await getattr(launcher, action)(vmi)
            except LauncherError as error:
                return pb.LifecycleResponse(success=False, message=str(error))
        return pb.LifecycleResponse(success=True)

    async def Pause(self, request: pb.VMIRef, context: grpc.aio.ServicerContext) -> pb.LifecycleResponse:
        return await self._forward(request, "pause", context)

    async def Unpause(self, request: pb.VMIRef, context: grpc.aio.ServicerContext) -> pb.LifecycleResponse:
        return await self._forward(request, "unpause", context)

    async def SoftReboot(self, request: pb.VMIRef, context: grpc.aio.ServicerContext) -> pb.LifecycleResponse:
        return await self._forward(request, "soft_reboot", context)

    async def Reset(self, request: pb.VMIRef, context: grpc.aio.ServicerContext) -> pb.LifecycleResponse:
        return await self._forward(request, "reset", context)

    async def GuestOSInfo(self, request: pb.VMIRef, context: grpc.aio.ServicerContext) -> pb.GuestOSInfoResponse:
        socket = await self._launcher_socket(request, context)
        if not socket.exists():
            return pb.GuestOSInfoResponse(response=pb.LifecycleResponse(
                success=False, message=f"VMI {request.namespace}/{request.name} has no launcher on {self._node}"))
        async with await LauncherClient.connect(socket, timeout=30) as launcher:
            info = await launcher.get_guest_info()
        return pb.GuestOSInfoResponse(response=pb.LifecycleResponse(success=True),
                                      guest_os_info_json=json.dumps(info).encode())
