"""One virt-launcher: its libvirtd, its domain, the Cmd socket and the Notify stream.

The launcher lives as long as its guest: it exits once the domain has stopped
after running (or was deleted), or when libvirt itself dies, which it reports as a
failure so the VMI is never silently lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import libvirt

from grpc_support.server import service, start_server
from grpc_support.versions import info_service
from kubevirt_grpc.cmd.v1 import cmd_pb2, cmd_pb2_grpc
from kubevirt_grpc.notify.v1 import notify_pb2
from virt_launcher import events
from virt_launcher.cmd_server import SUPPORTED_CMD_VERSIONS, CmdServicer
from virt_launcher.domain_manager import DomainManager, PrepareDisks
from virt_launcher.libvirtd import Libvirtd
from virt_launcher.migration import MigrationController
from virt_launcher.test_driver import TestDriver
from virt_launcher.notify_client import DomainNotifier

log = logging.getLogger(__name__)
SUPERVISE_SECONDS = 0.5
LAUNCHER_VERSION = "kubevirt-py-launcher/0.1.0"


@dataclass(frozen=True)
class _Pending:
    """An event on its way to the Notify stream, stamped when libvirt (or the migration)
    told us: the handler measures domain event -> VMI status from that stamp."""

    kind: str  # "lifecycle" or "status"
    stamp: int  # Unix nanoseconds
    state: str = ""
    reason: str = ""
    held: bool = False  # an incoming domain's event: not ours until the migration is finalized


@dataclass(frozen=True)
class LauncherConfig:
    namespace: str
    name: str
    uid: str
    work_dir: Path
    cmd_socket: Path
    notify_socket: Path | None
    domain_type: str
    image_store: Path | None = None
    # "libvirt": our own libvirtd and real QEMU guests; "test": libvirt's test driver.
    hypervisor: str = "libvirt"
    pod_ip: str | None = None
    # The guest's serial console socket; None: in the working directory (no handler attaches).
    serial_socket: Path | None = None


class Launcher:
    def __init__(self, config: LauncherConfig, prepare_disks: PrepareDisks,
                 hypervisor: Libvirtd | TestDriver | None = None) -> None:
        """hypervisor: config's, possibly spawned already (see virt_launcher.__main__)."""
        self.config = config
        self._prepare_disks = prepare_disks
        self.libvirtd: Libvirtd | TestDriver = hypervisor or (
            TestDriver(config.work_dir) if config.hypervisor == "test" else Libvirtd(config.work_dir))
        self._events: asyncio.Queue[_Pending] = asyncio.Queue()
        self._stopped = asyncio.Event()
        self._exit_code = 0
        self._started = False
        self.manager: DomainManager | None = None
        self.migration: MigrationController | None = None

    async def run(self) -> int:
        config = self.config
        config.work_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        events.start_event_loop()
        # Dialled while libvirtd comes up; its Hello waits until Cmd serves (announce below).
        notifier = self._notifier()
        try:
            server, connection = await self._serve(loop)
        except BaseException:
            if notifier is not None:
                await notifier.close()
            raise
        if notifier is not None:
            notifier.announce()
        tasks = [asyncio.create_task(self._forward_events(notifier)), asyncio.create_task(self._supervise())]
        try:
            await self._stopped.wait()
            await asyncio.sleep(0.2)  # let the last events reach the stream
            if notifier is not None:
                try:
                    await notifier.flush(timeout=5)
                except TimeoutError:
                    log.warning("the handler did not acknowledge the last events")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.stop(1)
            if self.migration is not None:
                await self.migration.close()
            if notifier is not None:
                await notifier.close()
            if self.manager is not None:
                # Never leave a guest behind that nothing manages any more.
                await asyncio.to_thread(_quietly, self.manager.kill)
            try:
                connection.close()
            except libvirt.libvirtError:
                pass
            await asyncio.to_thread(self.libvirtd.stop)
            if config.serial_socket is not None:
                config.serial_socket.unlink(missing_ok=True)  # before the Cmd socket takes its directory
            _remove_socket(config.cmd_socket)
        return self._exit_code

    def stop(self, exit_code: int = 0) -> None:
        self._exit_code = exit_code
        self._stopped.set()

    def terminate(self) -> None:
        """SIGTERM (the pod is being deleted): power the guest off within its grace period,
        then exit once the domain is off."""
        manager = self.manager
        vmi = manager.vmi if manager is not None else None
        if manager is None or vmi is None or (manager.info() or {}).get("status", {}).get("status") in (
                None, "Shutoff"):
            self.stop(0)
            return
        if self.migration is not None and self.migration.incoming:
            self.stop(0)  # a half-arrived guest is the source's: the source keeps running it
            return
        grace = int((vmi.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        migration = self.migration

        def shutdown() -> None:
            if migration is not None:
                migration.abort_outgoing()  # the guest stays here, and goes down with the pod
            manager.shutdown(grace)

        asyncio.get_running_loop().run_in_executor(None, shutdown)

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> tuple[grpc.aio.Server, libvirt.virConnect]:
        """libvirtd up, the domain manager on its connection, and Cmd served."""
        config = self.config
        connection = await asyncio.to_thread(self._connected)
        events.watch_lifecycle(
            connection,
            lambda _name, state, reason: loop.call_soon_threadsafe(self._lifecycle, state, reason, time.time_ns()),
            lambda reason: loop.call_soon_threadsafe(self._libvirt_lost, f"connection closed (reason {reason})"))
        self.manager = DomainManager(connection, config.work_dir, self._prepare_disks, config.domain_type,
                                     config.image_store, config.serial_socket)
        self.migration = MigrationController(
            self.manager, config.cmd_socket.parent,
            self.libvirtd.socket if isinstance(self.libvirtd, Libvirtd) else None,
            on_status=lambda _state: loop.call_soon_threadsafe(self._events.put_nowait,
                                                               _Pending("status", time.time_ns())),
            on_finalized=self._finalized)
        server, _ = await start_server([
            service(cmd_pb2, "Cmd", cmd_pb2_grpc.add_CmdServicer_to_server,
                    CmdServicer(self.manager, migration=self.migration)),
            info_service("CmdInfo", SUPPORTED_CMD_VERSIONS, LAUNCHER_VERSION),
        ], unix_socket=config.cmd_socket)
        return server, connection

    def _connected(self) -> libvirt.virConnect:
        # Each step once: __main__ may have spawned libvirtd and be connecting already.
        self.libvirtd.spawn()
        self.libvirtd.connect_ahead()
        return self.libvirtd.connect()

    def _notifier(self) -> DomainNotifier | None:
        if self.config.notify_socket is None:
            return None
        hello = notify_pb2.Hello(launcher_uid=str(uuid.uuid4()), vmi_namespace=self.config.namespace,
                                 vmi_name=self.config.name, vmi_uid=self.config.uid)
        notifier = DomainNotifier(self.config.notify_socket, hello, hold_hello=True)
        notifier.start()
        return notifier

    def _lifecycle(self, state: str, reason: str, stamp: int | None = None) -> None:
        held = self.migration is not None and self.migration.incoming
        self._events.put_nowait(_Pending("lifecycle", stamp or time.time_ns(), state, reason, held))

    def _finalized(self) -> None:
        """The migrated guest is ours now: tell the handler its state, watch it from here on."""
        info = self.manager.info() if self.manager is not None else None
        status = (info or {}).get("status") or {}
        self._events.put_nowait(_Pending("lifecycle", time.time_ns(), status.get("status", "Running"),
                                         status.get("reason", "Migrated")))

    async def _send(self, notifier: DomainNotifier | None, kind: int, domain: dict[str, Any], stamp: int) -> None:
        if notifier is not None:
            await notifier.send(notify_pb2.DomainEvent(type=kind, domain_json=json.dumps(domain).encode(),
                                                       timestamp_unix_nano=stamp))

    async def _forward_events(self, notifier: DomainNotifier | None) -> None:
        while True:
            pending = await self._events.get()
            state, reason = pending.state, pending.reason
            if pending.kind == "status":
                await self._send(notifier, notify_pb2.DOMAIN_STATUS, await self._status_report(), pending.stamp)
                continue
            if pending.held:
                log.info("incoming domain is %s (%s): not ours until the migration is finalized", state, reason)
                continue
            log.info("domain is %s (%s)", state, reason)
            if state in ("Running", "Paused"):
                self._started = True
            await self._send(notifier, notify_pb2.DOMAIN_LIFECYCLE, await self._domain_report(state, reason),
                             pending.stamp)
            if state == "Shutoff" and self._started:
                if reason == "Migrated":
                    # The guest lives on the target now: report how the migration ended, then go.
                    if self.migration is not None:
                        await self.migration.wait_outgoing(timeout=30)
                    await self._send(notifier, notify_pb2.DOMAIN_STATUS, await self._status_report(), time.time_ns())
                    self.stop(0)
                else:
                    self.stop(0 if reason in ("Shutdown", "Destroyed") else 1)

    async def _status_report(self) -> dict[str, Any]:
        """The domain as libvirt shows it now, with the last migration's state and progress."""
        info = None
        if self.manager is not None:
            info = await asyncio.to_thread(_quietly_value, self.manager.info)
        domain: dict[str, Any] = info or {"metadata": {"name": self.config.name, "namespace": self.config.namespace,
                                                       "uid": self.config.uid}, "status": {}}
        migration = self.migration.state() if self.migration is not None else None
        if migration is not None:
            domain.setdefault("status", {})["migration"] = migration
        return domain

    async def _domain_report(self, state: str, reason: str) -> dict[str, Any]:
        """The domain as of this event: the event's state, and what libvirt shows of the rest."""
        info = None
        if self.manager is not None and state != "Crashed":
            info = await asyncio.to_thread(_quietly_value, self.manager.info)
        domain: dict[str, Any] = info or {"metadata": {"name": self.config.name, "namespace": self.config.namespace,
                                                       "uid": self.config.uid}}
        domain["status"] = {"status": state, "reason": reason}
        if self.config.pod_ip:
            # Masquerade: the guest is reached at its pod's address, as upstream reports it.
            for interface in (domain.get("spec") or {}).get("interfaces") or []:
                interface["ipAddress"] = self.config.pod_ip
        return domain

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_SECONDS)
            if not self.libvirtd.alive():
                self._libvirt_lost("libvirtd exited")
                return

    def _libvirt_lost(self, why: str) -> None:
        if self._stopped.is_set():
            return
        log.error("libvirt is gone (%s): the guest cannot be managed any more", why)
        # An unmanaged guest must not outlive its launcher (its pod would be gone).
        kill_qemu_of(self.config.work_dir)
        # Reported as a crash: the handler marks the VMI Failed instead of losing it.
        self._lifecycle("Crashed", "Unknown")
        asyncio.get_running_loop().call_later(1.0, self.stop, 1)


def _remove_socket(path: Path) -> None:
    """Nobody should find a dead launcher's socket; its per-VMI directory goes too."""
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # not empty, or not ours to remove


def _quietly_value(call: Any) -> Any:
    try:
        return call()
    except Exception as error:  # libvirt may be going away; the event still goes out
        log.info("domain report: %s", error)
        return None


def _quietly(call: Any) -> None:
    try:
        call()
    except Exception as error:  # the domain may be gone already; that is the goal
        log.info("cleanup: %s", error)


def kill_qemu_of(work_dir: Path) -> None:
    """SIGKILL the QEMU processes whose command line names this launcher's directory."""
    marker = str(work_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and any(marker in arg for arg in argv):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def vmi_identity(vmi: dict[str, Any]) -> tuple[str, str, str]:
    meta = vmi.get("metadata") or {}
    return meta.get("namespace", "default"), meta.get("name", ""), meta.get("uid", "")
