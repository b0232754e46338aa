"""The launcher's side of Cmd: each call runs against the DomainManager in a worker thread."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import libvirt

from kubevirt_grpc.cmd.v1 import cmd_pb2, cmd_pb2_grpc
from virt_launcher.domain.errors import UnsupportedSpec
from virt_launcher.domain_manager import DomainManager, DomainNotFound, MigrationTargetBusy
from virt_launcher.migration import MigrationController, MigrationError
from virt_launcher.storage import StorageError

log = logging.getLogger(__name__)
SUPPORTED_CMD_VERSIONS = (1,)
_FAILURES = (UnsupportedSpec, StorageError, ValueError, DomainNotFound, MigrationError, MigrationTargetBusy,
             libvirt.libvirtError, OSError)


def _vmi(request: Any) -> dict[str, Any]:
    try:
        vmi = json.loads(request.vmi.vmi_json)
    except ValueError as error:
        raise ValueError(f"vmi: the VMI is not valid JSON: {error}") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise ValueError("vmi: the VMI's JSON is nested too deeply") from None
    if not isinstance(vmi, dict) or not isinstance(vmi.get("spec"), dict):
        raise ValueError("vmi: expected a VirtualMachineInstance with a spec")
    # The domain code reads these without checking each level's type.
    for field, value in (("metadata", vmi.get("metadata", {})), ("spec.domain", vmi["spec"].get("domain", {}))):
        if not isinstance(value, dict):
            raise ValueError(f"vmi: {field} must be an object, not {type(value).__name__}")
    return vmi


class CmdServicer(cmd_pb2_grpc.CmdServicer):
    def __init__(self, manager: DomainManager, on_sync: Callable[[dict[str, Any]], None] | None = None,
                 migration: MigrationController | None = None) -> None:
        self._manager = manager
        self._on_sync = on_sync
        self._migration = migration

    async def _run(self, call: Callable[[], Any]) -> cmd_pb2.Response:
        try:
            await asyncio.to_thread(call)
        except _FAILURES as error:
            return cmd_pb2.Response(success=False, message=str(error))
        return cmd_pb2.Response(success=True)

    async def _migration_call(self, request: Any, call: Callable[[MigrationController, dict[str, Any]], Awaitable[None]]
                              ) -> cmd_pb2.Response:
        if self._migration is None:
            return cmd_pb2.Response(success=False, message="this launcher cannot take part in a migration")
        try:
            await call(self._migration, _vmi(request))
        except _FAILURES as error:
            return cmd_pb2.Response(success=False, message=str(error))
        return cmd_pb2.Response(success=True)

    async def SyncVirtualMachine(self, request, context):
        try:
            vmi = _vmi(request)
        except ValueError as error:
            return cmd_pb2.Response(success=False, message=str(error))
        if self._migration is not None and self._migration.incoming:
            return cmd_pb2.Response(success=False, message="this launcher waits for an incoming migration: "
                                                           "FinalizeVirtualMachineMigration hands the domain over")
        if self._on_sync is not None:
            self._on_sync(vmi)
        return await self._run(lambda: self._manager.sync(vmi))

    async def ShutdownVirtualMachine(self, request, context):
        return await self._run(lambda: self._manager.shutdown(int(request.grace_period_seconds)))

    async def KillVirtualMachine(self, request, context):
        return await self._run(self._manager.kill)

    async def DeleteVirtualMachine(self, request, context):
        return await self._run(self._manager.delete)

    async def PauseVirtualMachine(self, request, context):
        return await self._run(self._manager.pause)

    async def UnpauseVirtualMachine(self, request, context):
        return await self._run(self._manager.unpause)

    async def ResetVirtualMachine(self, request, context):
        return await self._run(self._manager.reset)

    async def SoftRebootVirtualMachine(self, request, context):
        return await self._run(self._manager.soft_reboot)

    async def MigrateVirtualMachine(self, request, context):
        """Source: start the migration and return; its progress and outcome come as
        DOMAIN_STATUS events and in GetDomain/GetDomainStats under "migration"."""
        return await self._migration_call(request, lambda migration, vmi: migration.migrate(
            vmi, request.options, request.proxy_socket, request.target_domain_xml))

    async def CancelVirtualMachineMigration(self, request, context):
        return await self._migration_call(request, lambda migration, _: migration.cancel())

    async def SyncMigrationTarget(self, request, context):
        return await self._migration_call(request, lambda migration, vmi: migration.prepare_target(vmi))

    async def FinalizeVirtualMachineMigration(self, request, context):
        return await self._migration_call(request, lambda migration, vmi: migration.finalize_target(vmi))

    def _with_migration(self, report: dict[str, Any] | None, inside_status: bool) -> dict[str, Any] | None:
        state = self._migration.state() if self._migration is not None else None
        if report is None or state is None:
            return report
        (report.setdefault("status", {}) if inside_status else report)["migration"] = state
        return report

    async def GetDomain(self, request, context):
        info = self._with_migration(await asyncio.to_thread(self._manager.info), inside_status=True)
        return cmd_pb2.DomainResponse(response=cmd_pb2.Response(success=True),
                                      domain_json=json.dumps(info).encode() if info else b"")

    async def GetDomainStats(self, request, context):
        try:
            stats = self._with_migration(await asyncio.to_thread(self._manager.stats), inside_status=False)
        except (DomainNotFound, libvirt.libvirtError) as error:
            return cmd_pb2.DomainStatsResponse(response=cmd_pb2.Response(success=False, message=str(error)))
        return cmd_pb2.DomainStatsResponse(response=cmd_pb2.Response(success=True),
                                           domain_stats_json=json.dumps(stats).encode())

    async def GetGuestInfo(self, request, context):
        # No guest agent channel yet: report what is known, which is nothing about the guest OS.
        return cmd_pb2.GuestInfoResponse(response=cmd_pb2.Response(success=True), guest_info_json=b"{}")

    async def Ping(self, request, context):
        return cmd_pb2.Response(success=True)
