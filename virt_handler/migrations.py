"""The handlers' part of a live migration, following the contract in
virt_controller/migration_controller.py (vmi.status.migrationState):

- target node: prepare the target launcher (SyncMigrationTarget), route the tunnel's
  channels (LIBVIRT, QEMU, BLOCK) to it, then publish targetNodeAddress; after success, hand
  the guest to that launcher (FinalizeVirtualMachineMigration).
- source node: once targetNodeAddress is there, claim the start (startTimestamp, written
  with the resourceVersion read, so a cancel is never missed), open the source tunnels and
  ask the launcher to migrate; report the launcher's verdict (completed, failed, abort).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from kube_client.quantity import parse_quantity
from kube_client.timestamps import now_text
from kubevirt_api.pod_layout import launcher_socket, migration_socket
from kubevirt_grpc.cmd.v1 import cmd_pb2
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from virt_handler.cmd_client import LauncherClient
from virt_handler.migration_tunnel import SourceTunnel, TargetRegistry, tunnel_channel

Obj = dict[str, Any]
log = logging.getLogger(__name__)

# Patches vmi.status.migrationState with the VMI's resourceVersion (raises on conflict) and
# returns the VMI as written.
PatchState = Callable[[Obj, Obj], Obj]
Run = Callable[[Awaitable[Any]], Any]
RETRY_SECONDS = 1.0
# Every channel a migration relays: its tunnel channel and its socket name in pod_layout.
CHANNELS = ((pb.LIBVIRT, "libvirt"), (pb.QEMU, "qemu"), (pb.BLOCK, "block"))


def migration_state(vmi: Obj) -> Obj:
    return (vmi.get("status") or {}).get("migrationState") or {}


def migration_options(state: Obj) -> cmd_pb2.MigrationOptions:
    config = state.get("migrationConfiguration") or {}
    bandwidth = config.get("bandwidthPerMigration") or 0
    return cmd_pb2.MigrationOptions(
        bandwidth_bytes_per_second=int(parse_quantity(str(bandwidth))),
        completion_timeout_per_gib_seconds=int(config.get("completionTimeoutPerGiB") or 0),
        progress_timeout_seconds=int(config.get("progressTimeout") or 0),
        allow_auto_converge=bool(config.get("allowAutoConverge")),
        allow_post_copy=bool(config.get("allowPostCopy")))


async def _with_launcher(socket: Path, action: Callable[[LauncherClient], Awaitable[Any]]) -> Any:
    async with await LauncherClient.connect(socket, timeout=30) as launcher:
        return await action(launcher)


class TargetSide:
    def __init__(self, node: str, sockets_dir: Path, registry: TargetRegistry, address: str, run: Run,
                 patch_state: PatchState) -> None:
        self._node = node
        self._sockets = sockets_dir
        self._registry = registry
        self._address = address
        self._run = run
        self._patch = patch_state
        self._finalized: set[str] = set()

    def step(self, vmi: Obj) -> float | None:
        state = migration_state(vmi)
        if state.get("targetNode") != self._node or not state.get("migrationUid"):
            return None
        uid = state["migrationUid"]
        if state.get("completed"):
            self._registry.unregister(uid)
            if not state.get("failed") and uid not in self._finalized:
                return self._finalize(vmi, uid)
            return None
        if state.get("targetNodeAddress"):
            return None
        return self._prepare(vmi, uid)

    def _launcher(self, vmi: Obj) -> Path:
        return Path(launcher_socket(vmi["metadata"]["uid"], str(self._sockets)))

    def _prepare(self, vmi: Obj, uid: str) -> float | None:
        socket = self._launcher(vmi)
        if not socket.exists():
            return RETRY_SECONDS  # the target launcher pod is still starting
        self._run(_with_launcher(socket, lambda launcher: launcher.sync_migration_target(vmi)))
        vmi_uid = vmi["metadata"]["uid"]
        for channel, name in CHANNELS:
            self._registry.register(uid, channel, migration_socket(vmi_uid, name, str(self._sockets)), vmi_uid)
        self._patch(vmi, {"targetNodeAddress": self._address})
        log.info("migration %s: target ready on %s (%s)", uid, self._node, self._address)
        return None

    def _finalize(self, vmi: Obj, uid: str) -> float | None:
        try:
            self._run(_with_launcher(self._launcher(vmi), lambda launcher: launcher.finalize_migration(vmi)))
        except Exception as error:  # the guest may still be arriving: try again shortly
            log.info("migration %s: finalize not yet possible: %s", uid, error)
            return RETRY_SECONDS
        self._finalized.add(uid)
        self._patch(vmi, {"targetNodeDomainDetected": True, "targetNodeDomainReadyTimestamp": now_text()})
        return None


class SourceSide:
    def __init__(self, node: str, sockets_dir: Path, credentials: Callable[[], grpc.ChannelCredentials | None],
                 run: Run, patch_state: PatchState) -> None:
        self._node = node
        self._sockets = sockets_dir
        self._credentials = credentials
        self._run = run
        self._patch = patch_state
        self._tunnels: dict[str, list[SourceTunnel]] = {}
        self._cancelled: set[str] = set()

    def step(self, vmi: Obj, report: Obj | None) -> float | None:
        """report: the launcher's last migration report (status.migration), if any."""
        state = migration_state(vmi)
        uid = state.get("migrationUid")
        if not uid or state.get("sourceNode") != self._node:
            return None
        if state.get("completed"):
            self._close(uid)
            return None
        # The launcher's report ends with completed (it moved) or failed (it did not).
        if report is not None and report.get("migrationUid") == uid and (report.get("completed")
                                                                         or report.get("failed")):
            self._finish(vmi, uid, report)
            return None
        if state.get("startTimestamp"):
            if state.get("abortRequested") and uid not in self._cancelled:
                self._cancel(vmi, uid)
            return None
        if state.get("targetNodeAddress") and not state.get("abortRequested"):
            self._start(vmi, state)
        return None

    def _socket(self, vmi: Obj, name: str) -> Path:
        return Path(migration_socket(vmi["metadata"]["uid"], name, str(self._sockets)))

    def _start(self, vmi: Obj, state: Obj) -> None:
        uid = state["migrationUid"]
        # A conflict (a cancel written meanwhile, say) aborts this pass; the next one decides again.
        vmi = self._patch(vmi, {"startTimestamp": now_text()})
        try:
            self._run(self._open_tunnels(vmi, state))
            launcher = Path(launcher_socket(vmi["metadata"]["uid"], str(self._sockets)))
            self._run(_with_launcher(launcher, lambda client: client.migrate(
                vmi, migration_options(state), str(self._socket(vmi, "libvirt")))))
            log.info("migration %s: %s -> %s started", uid, self._node, state.get("targetNode"))
        except Exception as error:
            log.warning("migration %s could not start: %s", uid, error)
            self._close(uid)
            self._patch(vmi, {"completed": True, "failed": True, "endTimestamp": now_text(),
                              "failureReason": f"the source could not start the migration: {error}"})

    async def _open_tunnels(self, vmi: Obj, state: Obj) -> None:
        peer = tunnel_channel(state["targetNodeAddress"], self._credentials(), target_name=state.get("targetNode"))
        ref = pb.VMIRef(namespace=vmi["metadata"]["namespace"], name=vmi["metadata"]["name"],
                        uid=vmi["metadata"]["uid"])
        tunnels = [SourceTunnel(peer, state["migrationUid"], channel, self._socket(vmi, name), vmi=ref,
                                socket_mode=0o600)
                   for channel, name in CHANNELS]
        for tunnel in tunnels:
            await tunnel.start()
        self._tunnels[state["migrationUid"]] = tunnels

    def _cancel(self, vmi: Obj, uid: str) -> None:
        self._cancelled.add(uid)
        launcher = Path(launcher_socket(vmi["metadata"]["uid"], str(self._sockets)))
        try:
            self._run(_with_launcher(launcher, lambda client: client.cancel_migration(vmi)))
            self._patch(vmi, {"abortStatus": "Aborting"})
        except Exception as error:  # it ended before the cancel: its report settles it
            log.info("migration %s: cancel: %s", uid, error)

    def _finish(self, vmi: Obj, uid: str, report: Obj) -> None:
        changes: Obj = {"completed": True, "failed": bool(report.get("failed")),
                        "endTimestamp": report.get("endTimestamp") or now_text()}
        if report.get("failed"):
            changes["failureReason"] = report.get("failureReason") or "the migration failed"
        if report.get("abortStatus"):
            changes["abortStatus"] = report["abortStatus"]
        self._patch(vmi, changes)
        self._close(uid)
        log.info("migration %s: %s", uid, "failed: " + changes.get("failureReason", "") if changes["failed"]
                 else "completed")

    def _close(self, uid: str) -> None:
        tunnels = self._tunnels.pop(uid, [])
        for tunnel in tunnels:
            try:
                self._run(tunnel.close())
            except Exception as error:
                log.info("migration %s: closing a tunnel: %s", uid, error)
