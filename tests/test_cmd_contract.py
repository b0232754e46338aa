"""Cmd v1 over a real unix socket: every command round-trips, with health and reflection."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from grpc_support.server import service, start_server
from grpc_support.unix import unix_target
from grpc_support.versions import info_service
from kubevirt_grpc.cmd.v1 import cmd_pb2, cmd_pb2_grpc
from virt_handler.cmd_client import LauncherClient, LauncherError

COMMANDS = {
    "SyncVirtualMachine", "ShutdownVirtualMachine", "KillVirtualMachine", "DeleteVirtualMachine",
    "PauseVirtualMachine", "UnpauseVirtualMachine", "ResetVirtualMachine", "SoftRebootVirtualMachine",
    "MigrateVirtualMachine", "CancelVirtualMachineMigration", "SyncMigrationTarget",
    "FinalizeVirtualMachineMigration", "GetDomain", "GetDomainStats", "GetGuestInfo", "Ping",
}

VMI = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
       "metadata": {"name": "testvmi", "namespace": "default", "uid": "1234"},
       "spec": {"domain": {"devices": {}}}}


class RecordingLauncher(cmd_pb2_grpc.CmdServicer):
    """Answers every command, recording (method, VMI name) so the test can see what arrived."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def _record(self, method: str, request: object) -> cmd_pb2.Response:
        vmi = getattr(request, "vmi", None)
        name = json.loads(vmi.vmi_json)["metadata"]["name"] if vmi is not None and vmi.vmi_json else ""
        self.calls.append((method, name))
        if name == "refuse-me":
            return cmd_pb2.Response(success=False, message="spec.domain: refused for the test")
        return cmd_pb2.Response(success=True)

    async def GetDomain(self, request, context):
        self._record("GetDomain", request)
        return cmd_pb2.DomainResponse(response=cmd_pb2.Response(success=True),
                                      domain_json=json.dumps({"status": {"status": "Running"}}).encode())

    async def GetDomainStats(self, request, context):
        self._record("GetDomainStats", request)
        return cmd_pb2.DomainStatsResponse(response=cmd_pb2.Response(success=True),
                                           domain_stats_json=json.dumps({"cpu": {"time": 7}}).encode())

    async def GetGuestInfo(self, request, context):
        self._record("GetGuestInfo", request)
        return cmd_pb2.GuestInfoResponse(response=cmd_pb2.Response(success=True),
                                         guest_info_json=json.dumps({"hostname": "guest"}).encode())


def _recorder(method: str):
    async def handler(self: RecordingLauncher, request, context) -> cmd_pb2.Response:
        return self._record(method, request)
    return handler


# Every command answering a plain Response records and succeeds.
for _method in COMMANDS - {"GetDomain", "GetDomainStats", "GetGuestInfo"}:
    setattr(RecordingLauncher, _method, _recorder(_method))


def test_cmd_contract_has_every_command() -> None:
    methods = set(cmd_pb2.DESCRIPTOR.services_by_name["Cmd"].methods_by_name)
    assert methods == COMMANDS


async def _serve(socket: Path, launcher: RecordingLauncher, versions=(1,)):
    return await start_server([
        service(cmd_pb2, "Cmd", cmd_pb2_grpc.add_CmdServicer_to_server, launcher),
        info_service("CmdInfo", versions, "test-launcher"),
    ], unix_socket=socket)


def test_cmd_round_trip_over_unix_socket(sockdir: Path) -> None:
    async def scenario() -> None:
        launcher = RecordingLauncher()
        socket = sockdir / "launcher.sock"
        server, _ = await _serve(socket, launcher)
        try:
            assert stat.S_IMODE(socket.stat().st_mode) == 0o600
            client = await LauncherClient.connect(socket)
            assert client.version == 1
            await client.sync(VMI, cmd_pb2.VirtualMachineOptions(domain_type="qemu"))
            await client.shutdown(VMI, grace_period_seconds=30)
            await client.kill(VMI)
            await client.delete(VMI)
            await client.pause(VMI)
            await client.unpause(VMI)
            await client.reset(VMI)
            await client.soft_reboot(VMI)
            await client.migrate(VMI, cmd_pb2.MigrationOptions(progress_timeout_seconds=150), "/run/mig.sock")
            await client.cancel_migration(VMI)
            await client.sync_migration_target(VMI)
            await client.finalize_migration(VMI)
            assert await client.get_domain() == {"status": {"status": "Running"}}
            assert await client.get_domain_stats() == {"cpu": {"time": 7}}
            assert await client.get_guest_info() == {"hostname": "guest"}
            await client.ping()
            with pytest.raises(LauncherError, match="PauseVirtualMachine: spec.domain: refused for the test"):
                await client.pause({**VMI, "metadata": {"name": "refuse-me"}})
            await client.close()
        finally:
            await server.stop(None)
        called = {method for method, _ in launcher.calls}
        assert called == COMMANDS
        assert all(name == "testvmi" for method, name in launcher.calls[:12])

    asyncio.run(scenario())


def test_cmd_server_answers_health_and_reflection(sockdir: Path) -> None:
    async def scenario() -> None:
        socket = sockdir / "launcher.sock"
        server, _ = await _serve(socket, RecordingLauncher())
        try:
            async with grpc.aio.insecure_channel(unix_target(socket)) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                for name in ("", "kubevirt.cmd.v1.Cmd", "kubevirt.info.v1.CmdInfo"):
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING
                reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
                replies = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
                async for reply in replies:
                    names = {s.name for s in reply.list_services_response.service}
                    break
                assert {"kubevirt.cmd.v1.Cmd", "kubevirt.info.v1.CmdInfo", "grpc.health.v1.Health"} <= names
        finally:
            await server.stop(None)

    asyncio.run(scenario())


def test_stale_socket_is_replaced_but_a_regular_file_is_not(sockdir: Path) -> None:
    async def scenario() -> None:
        socket = sockdir / "launcher.sock"
        first, _ = await _serve(socket, RecordingLauncher())
        await first.stop(None)
        second, _ = await _serve(socket, RecordingLauncher())  # the old socket file is stale
        await second.stop(None)
        regular = sockdir / "not-a-socket"
        regular.write_text("data")
        with pytest.raises(FileExistsError, match="not a socket"):
            await _serve(regular, RecordingLauncher())
        assert regular.read_text() == "data"

    asyncio.run(scenario())
