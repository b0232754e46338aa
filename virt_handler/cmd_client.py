"""The handler's side of Cmd: typed calls to one launcher over its unix socket."""

from __future__ import annotations

import json
import os
from typing import Any

import grpc

from grpc_support.limits import OPTIONS
from grpc_support.unix import unix_target
from grpc_support.versions import negotiate
from kubevirt_grpc.cmd.v1 import cmd_pb2, cmd_pb2_grpc

# Cmd versions this handler can speak, oldest first.
SUPPORTED_CMD_VERSIONS = (1,)


class LauncherError(RuntimeError):
    """The launcher refused or failed a command; the message says why."""


def vmi_message(vmi: dict[str, Any]) -> cmd_pb2.VMI:
    return cmd_pb2.VMI(vmi_json=json.dumps(vmi, separators=(",", ":")).encode())


class LauncherClient:
    """Connect with ``await LauncherClient.connect(path)``; close with ``await client.close()``,
    or use it as ``async with await LauncherClient.connect(path) as launcher:``."""

    def __init__(self, channel: grpc.aio.Channel, version: int, timeout: float) -> None:
        self._channel = channel
        self.version = version
        self._timeout = timeout
        self._stub = cmd_pb2_grpc.CmdStub(channel)

    @classmethod
    async def connect(cls, socket_path: str | os.PathLike[str], timeout: float = 30.0) -> LauncherClient:
        channel = grpc.aio.insecure_channel(unix_target(socket_path), options=OPTIONS)
        try:
            version = await negotiate(channel, "CmdInfo", SUPPORTED_CMD_VERSIONS, timeout=timeout)
        except BaseException:
            await channel.close()
            raise
        return cls(channel, version, timeout)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> LauncherClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, request: Any) -> Any:
        response = await getattr(self._stub, method)(request, timeout=self._timeout)
        status = response if isinstance(response, cmd_pb2.Response) else response.response
        if not status.success:
            raise LauncherError(f"{method}: {status.message}")
        return response

    async def _vmi_call(self, method: str, vmi: dict[str, Any]) -> None:
        await self._call(method, cmd_pb2.VMIRequest(vmi=vmi_message(vmi)))

    async def sync(self, vmi: dict[str, Any], options: cmd_pb2.VirtualMachineOptions | None = None) -> None:
        await self._call("SyncVirtualMachine", cmd_pb2.VMIRequest(vmi=vmi_message(vmi), options=options))

    async def shutdown(self, vmi: dict[str, Any], grace_period_seconds: int) -> None:
        await self._call("ShutdownVirtualMachine", cmd_pb2.ShutdownRequest(
            vmi=vmi_message(vmi), grace_period_seconds=grace_period_seconds))

    async def kill(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("KillVirtualMachine", vmi)

    async def delete(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("DeleteVirtualMachine", vmi)

    async def pause(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("PauseVirtualMachine", vmi)

    async def unpause(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("UnpauseVirtualMachine", vmi)

    async def reset(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("ResetVirtualMachine", vmi)

    async def soft_reboot(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("SoftRebootVirtualMachine", vmi)

    async def migrate(self, vmi: dict[str, Any], options: cmd_pb2.MigrationOptions, proxy_socket: str,
                      target_domain_xml: str = "") -> None:
        await self._call("MigrateVirtualMachine", cmd_pb2.MigrationRequest(
            vmi=vmi_message(vmi), options=options, proxy_socket=proxy_socket,
            target_domain_xml=target_domain_xml))

    async def cancel_migration(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("CancelVirtualMachineMigration", vmi)

    async def sync_migration_target(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("SyncMigrationTarget", vmi)

    async def finalize_migration(self, vmi: dict[str, Any]) -> None:
        await self._vmi_call("FinalizeVirtualMachineMigration", vmi)

    async def get_domain(self) -> dict[str, Any] | None:
        response = await self._call("GetDomain", cmd_pb2.EmptyRequest())
        return json.loads(response.domain_json) if response.domain_json else None

    async def get_domain_stats(self) -> dict[str, Any]:
        response = await self._call("GetDomainStats", cmd_pb2.EmptyRequest())
        return json.loads(response.domain_stats_json or b"{}")

    async def get_guest_info(self) -> dict[str, Any]:
        response = await self._call("GetGuestInfo", cmd_pb2.EmptyRequest())
        return json.loads(response.guest_info_json or b"{}")

    async def ping(self) -> None:
        await self._call("Ping", cmd_pb2.EmptyRequest())
