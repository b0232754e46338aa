"""Live migration, the launcher's part of it.

Every launcher runs its own libvirtd in its own mount namespace, so a migration is one
libvirt talking to another through two unix sockets in the VMI's sockets directory
(``kubevirt_api.pod_layout.migration_socket``: the same path string on both nodes, a
different socket on each), which the two virt-handlers relay to each other:

- ``migration-libvirt.sock``: the source libvirtd's peer-to-peer connection to the target
  libvirtd. On the source node virt-handler listens there (or wherever the request's
  ``proxy_socket`` says); on the target node the launcher relays it to its own libvirtd,
  whose control socket lives in the launcher's private working directory.
- ``migration-qemu.sock``: QEMU's migration stream (with its return path). The source
  passes ``unix://<sockets dir>/migration-qemu.sock`` as the migration URI; libvirt gives
  the same string to both QEMUs, and each resolves it in its own pod: the target QEMU
  listens there (the target handler connects), the source QEMU connects there (the source
  handler listens).
- ``migration-block.sock``: the same arrangement for the disks the launcher made itself
  (containerDisk overlays, emptyDisks, cloud-init images), which no other node can see:
  the target QEMU serves them over NBD there and the source QEMU mirrors its writes into
  them (libvirt's non-shared incremental copy: only the top layer, as the containerDisk
  base image is on every node already).

Source: ``migrateToURI3`` runs in a thread; a monitor thread reads ``jobStats`` for the
progress report and aborts the job (``abortJob``) when the completion timeout (per GiB of
guest memory) or the progress timeout runs out, or when the handler cancels. A failed or
aborted migration leaves the guest running on the source, as libvirt resumes it there.

Target: preparation makes the disks, kernel and console paths the incoming domain expects
and opens the libvirt relay; the domain itself is created by the source's libvirt. Its
events stay local until the handler finalizes the migration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt

from kube_client.timestamps import now_text
from kubevirt_api.pod_layout import migration_socket_name
from virt_launcher.domain_manager import DomainManager

Obj = dict[str, Any]
log = logging.getLogger(__name__)

# Upstream KubeVirt's defaults for MigrationConfiguration, used when a request leaves them 0.
DEFAULT_COMPLETION_TIMEOUT_PER_GIB = 150
DEFAULT_PROGRESS_TIMEOUT = 150
POLL_SECONDS = 0.25
REPORT_SECONDS = 1.0
RELAY_CHUNK = 256 * 1024
GIB = 1 << 30
MIB = 1 << 20


class MigrationError(RuntimeError):
    pass


def libvirt_uri(socket: str | os.PathLike[str]) -> str:
    """The peer-to-peer destination: a libvirtd reached through a unix socket."""
    return f"qemu+unix:///system?socket={os.fspath(socket)}"


def stream_uri(socket: str | os.PathLike[str]) -> str:
    """QEMU's migration URI: the target listens on this path, the source connects to it."""
    return f"unix://{os.fspath(socket)}"


def _migration_uid(vmi: Obj) -> str:
    return str(((vmi.get("status") or {}).get("migrationState") or {}).get("migrationUid") or "")


def migration_flags(options: Any, copy_disks: bool = False) -> int:
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
    if copy_disks:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_INC
    if options.allow_auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if options.allow_post_copy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    # libvirt refuses local disk files it is not told to copy ("Migration without shared
    # storage is unsafe"), and cannot tell a ReadWriteMany claim in a local directory from a
    # private file. Whether the storage may move was settled before: only LiveMigratable VMIs
    # migrate (every claim ReadWriteMany, every hostDisk shared); the launcher's own disks
    # are copied (see local_disks), so the check is left to us.
    # options.unsafe_migration asks for the same and changes nothing more.
    flags |= libvirt.VIR_MIGRATE_UNSAFE
    return flags


def migration_params(migrate_uri: str, dest_xml: str, options: Any, persist_xml: str | None = None,
                     copy_disks: list[str] | None = None, disks_uri: str = "") -> Obj:
    params: Obj = {libvirt.VIR_MIGRATE_PARAM_URI: migrate_uri, libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml}
    if copy_disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(copy_disks)
        params[libvirt.VIR_MIGRATE_PARAM_DISKS_URI] = disks_uri
    if persist_xml:
        params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = persist_xml
    if options.bandwidth_bytes_per_second:
        # libvirt counts in MiB/s; never round a small limit down to "unlimited" (0).
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = max(1, math.ceil(options.bandwidth_bytes_per_second / MIB))
    return params


def local_disks(xml: str, work_dir: Path) -> list[str]:
    """Target devices of the writable disks in the launcher's own working directory
    (containerDisk overlays, emptyDisks, cloud-init images): only this pod has them, so
    the migration copies them. The target prepared empty ones of the same size and
    backing image."""
    # Resolved both: /var/run is a link to /run, and the disk paths went through it.
    own = work_dir.resolve()
    found = []
    for disk in ET.fromstring(xml).iterfind("devices/disk"):
        source, target = disk.find("source"), disk.find("target")
        path = (source.get("file") or source.get("dev") or "") if source is not None else ""
        if disk.find("readonly") is not None or not path or not Path(path).resolve().is_relative_to(own):
            continue
        if target is not None and target.get("dev"):
            found.append(target.get("dev", ""))
    return found


def progress_of(stats: Obj) -> Obj:
    """libvirt's job statistics under the names the handler publishes as metrics."""
    page = int(stats.get("memory_page_size") or 4096)
    progress = {
        "dataTotalBytes": stats.get("data_total"),
        "dataProcessedBytes": stats.get("data_processed"),
        "dataRemainingBytes": stats.get("data_remaining"),
        "memoryTransferRateBytesPerSecond": stats.get("memory_bps"),
        "dirtyRateBytesPerSecond": (int(stats["memory_dirty_rate"]) * page
                                    if stats.get("memory_dirty_rate") is not None else None),
        "iteration": stats.get("memory_iteration"),
        "elapsedMilliseconds": stats.get("time_elapsed"),
        "downtimeMilliseconds": stats.get("downtime"),
    }
    return {key: int(value) for key, value in progress.items() if value is not None}


class SourceMigration:
    """One outgoing migration: the libvirt call in one thread, its monitor in another."""

    def __init__(self, domain: libvirt.virDomain, *, dconnuri: str, params: Obj, flags: int, options: Any,
                 migration_uid: str, report: Callable[[Obj], None], copied_disks: list[str] | None = None) -> None:
        self._domain = domain
        self._dconnuri = dconnuri
        self._params = params
        self._flags = flags
        self._report = report
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abort_reason: str | None = None
        self._abort_sent = False
        self._cancelled = False
        memory_gib = max(1, math.ceil(domain.maxMemory() * 1024 / GIB))
        self._completion_timeout = (options.completion_timeout_per_gib_seconds
                                    or DEFAULT_COMPLETION_TIMEOUT_PER_GIB) * memory_gib
        self._progress_timeout = options.progress_timeout_seconds or DEFAULT_PROGRESS_TIMEOUT
        self._allow_post_copy = bool(options.allow_post_copy)
        self._state: Obj = {"migrationUid": migration_uid, "targetURI": params[libvirt.VIR_MIGRATE_PARAM_URI],
                            "startTimestamp": now_text(), "endTimestamp": None, "completed": False, "failed": False,
                            "failureReason": "", "abortStatus": "", "mode": "PreCopy",
                            "completionTimeoutSeconds": self._completion_timeout,
                            "progressTimeoutSeconds": self._progress_timeout,
                            "copiedDisks": list(copied_disks or []), "progress": {}}

    def start(self) -> None:
        threading.Thread(target=self._migrate, name="migration", daemon=True).start()
        threading.Thread(target=self._monitor, name="migration-monitor", daemon=True).start()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def snapshot(self) -> Obj:
        with self._lock:
            return {**self._state, "progress": dict(self._state["progress"])}

    def cancel(self) -> None:
        """Abort the job; the monitor keeps trying until libvirt has one to abort."""
        if not self.running:
            raise MigrationError("no migration is in progress: it has already "
                                 + ("completed" if self._state["completed"] else "failed"))
        with self._lock:
            self._cancelled = True
            self._state["abortStatus"] = "Aborting"
        self._abort("cancelled by virt-handler")

    def _abort(self, reason: str) -> None:
        with self._lock:
            if self._abort_reason is None:
                self._abort_reason = reason
        try:
            self._domain.abortJob()
            self._abort_sent = True
        except libvirt.libvirtError as error:
            log.info("migration abort: %s (retrying while the job starts)", error.get_error_message())

    def _migrate(self) -> None:
        error_message = ""
        try:
            if self._abort_reason is None:
                log.info("migrating to %s over %s", self._dconnuri, self._params[libvirt.VIR_MIGRATE_PARAM_URI])
                self._domain.migrateToURI3(self._dconnuri, self._params, self._flags)
            else:
                error_message = self._abort_reason
        except libvirt.libvirtError as error:
            error_message = error.get_error_message() or str(error)
        final: Obj = {}
        with contextlib.suppress(libvirt.libvirtError):
            final = progress_of(self._domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))
        with self._lock:
            state = self._state
            state["endTimestamp"] = now_text()
            state["progress"].update(final)
            if error_message:
                state["failed"] = True
                state["failureReason"] = (f"{self._abort_reason} ({error_message})"
                                          if self._abort_reason else error_message)
                if self._cancelled:
                    state["abortStatus"] = "Succeeded"
            else:
                state["completed"] = True
                if self._cancelled:
                    state["abortStatus"] = "Failed"  # too late: the guest had moved already
        log.info("migration %s", "failed: " + state["failureReason"] if error_message else "completed")
        self._report(self.snapshot())
        self._done.set()

    def _monitor(self) -> None:
        started = time.monotonic()
        last_progress = started
        lowest_remaining: int | None = None
        last_report = 0.0
        while not self._done.wait(POLL_SECONDS):
            now = time.monotonic()
            if self._abort_reason is not None and not self._abort_sent:
                self._abort(self._abort_reason)  # the first attempt may have come before the job
            try:
                stats = self._domain.jobStats()
            except libvirt.libvirtError:
                continue
            if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
                continue
            progress = progress_of(stats)
            with self._lock:
                self._state["progress"] = progress
                mode = self._state["mode"]
            remaining = progress.get("dataRemainingBytes")
            if remaining is not None and (lowest_remaining is None or remaining < lowest_remaining):
                lowest_remaining, last_progress = remaining, now
            if now - last_report >= REPORT_SECONDS:
                last_report = now
                self._report(self.snapshot())
            if self._abort_reason is not None or mode == "PostCopy":
                continue  # an aborting or post-copy migration cannot be given up any more
            if now - started > self._completion_timeout:
                if self._allow_post_copy:
                    self._post_copy()
                else:
                    self._abort(f"migration did not complete within {self._completion_timeout}s")
            elif now - last_progress > self._progress_timeout:
                self._abort(f"migration made no progress for {self._progress_timeout}s")

    def _post_copy(self) -> None:
        try:
            self._domain.migrateStartPostCopy(0)
        except libvirt.libvirtError as error:
            self._abort(f"migration did not complete within {self._completion_timeout}s and post-copy "
                        f"could not start: {error.get_error_message()}")
            return
        log.info("migration switched to post-copy after %ss", self._completion_timeout)
        with self._lock:
            self._state["mode"] = "PostCopy"


class UnixRelay:
    """A unix socket whose every connection is joined to a fresh connection to another one,
    bytes both ways, half-closes passed on."""

    def __init__(self, listen: Path, connect: Path) -> None:
        self.listen = Path(listen)
        self.connect = Path(connect)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.listen.unlink(missing_ok=True)
        # Restricted between bind and listen: nobody can connect to a socket that does
        # not listen yet, so no one slips in while it still has the umask's mode.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.listen))
            os.chmod(self.listen, 0o600)
            self._server = await asyncio.start_unix_server(self._serve, sock=listener)
        except BaseException:
            listener.close()
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.listen.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                peer_reader, peer_writer = await asyncio.open_unix_connection(str(self.connect))
            except OSError as error:
                log.warning("relay %s: cannot reach %s: %s", self.listen, self.connect, error)
                return
            try:
                await asyncio.gather(_pump(reader, peer_writer), _pump(peer_reader, writer))
            finally:
                peer_writer.close()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


class MigrationController:
    """The migration calls of Cmd, in the launcher's event loop.

    ``on_status`` gets the outgoing migration's state (progress while it runs, the outcome
    at the end) from any thread; ``on_finalized`` is called in the loop once the target has
    taken the guest over.
    """

    def __init__(self, manager: DomainManager, sockets_dir: Path, libvirt_socket: Path | None,
                 on_status: Callable[[Obj], None], on_finalized: Callable[[], None]) -> None:
        self._manager = manager
        self.sockets_dir = Path(sockets_dir)
        self._libvirt_socket = libvirt_socket
        self._on_status = on_status
        self._on_finalized = on_finalized
        self._source: SourceMigration | None = None
        self._relay: UnixRelay | None = None
        # Target side between SyncMigrationTarget and FinalizeVirtualMachineMigration.
        self.incoming = False

    def socket(self, channel: str) -> Path:
        return self.sockets_dir / migration_socket_name(channel)

    def state(self) -> Obj | None:
        """The last outgoing migration, as GetDomain and GetDomainStats report it."""
        return self._source.snapshot() if self._source is not None else None

    def _require_libvirt(self) -> Path:
        if self._libvirt_socket is None:
            raise MigrationError("this launcher runs on libvirt's test driver, which cannot migrate")
        return self._libvirt_socket

    # --- source ---------------------------------------------------------------------------

    async def migrate(self, vmi: Obj, options: Any, proxy_socket: str = "", target_domain_xml: str = "") -> None:
        self._require_libvirt()
        if self.incoming:
            raise MigrationError("this launcher is the target of a migration that is not finalized")
        if self._source is not None and self._source.running:
            raise MigrationError("a migration is already in progress")
        source = await asyncio.to_thread(self._prepare_source, vmi, options, proxy_socket, target_domain_xml)
        self._source = source
        source.start()

    def _prepare_source(self, vmi: Obj, options: Any, proxy_socket: str, target_domain_xml: str) -> SourceMigration:
        domain = self._manager.domain()
        if not domain.isActive():
            raise MigrationError(f"domain {domain.name()} is not running")
        dest_xml = target_domain_xml or domain.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        copied = local_disks(dest_xml, self._manager.work_dir)
        params = migration_params(stream_uri(self.socket("qemu")), dest_xml, options,
                                  persist_xml=target_domain_xml or None, copy_disks=copied,
                                  disks_uri=stream_uri(self.socket("block")))
        if copied:
            log.info("copying local disks %s to the target", ", ".join(copied))
        return SourceMigration(domain, dconnuri=libvirt_uri(proxy_socket or self.socket("libvirt")),
                               params=params, flags=migration_flags(options, copy_disks=bool(copied)),
                               options=options, migration_uid=_migration_uid(vmi), report=self._on_status,
                               copied_disks=copied)

    async def cancel(self) -> None:
        if self._source is None:
            raise MigrationError("no migration has been started")
        await asyncio.to_thread(self._source.cancel)

    def abort_outgoing(self) -> None:
        """Blocking: give up a running outgoing migration (the launcher is told to stop)."""
        if self._source is not None and self._source.running:
            with contextlib.suppress(MigrationError):
                self._source.cancel()
            self._source.wait(30)

    async def wait_outgoing(self, timeout: float) -> Obj | None:
        if self._source is None:
            return None
        await asyncio.to_thread(self._source.wait, timeout)
        return self._source.snapshot()

    # --- target ---------------------------------------------------------------------------

    async def prepare_target(self, vmi: Obj) -> None:
        libvirt_socket = self._require_libvirt()
        if self._source is not None:
            raise MigrationError("this launcher is the source of a migration, it cannot be its target")
        await asyncio.to_thread(self._manager.prepare_incoming, vmi)
        self.incoming = True
        if self._relay is None:
            self.sockets_dir.mkdir(parents=True, exist_ok=True)
            relay = UnixRelay(self.socket("libvirt"), libvirt_socket)
            await relay.start()
            self._relay = relay
        log.info("ready for an incoming migration: libvirt on %s, QEMU will listen on %s",
                 self.socket("libvirt"), self.socket("qemu"))

    async def finalize_target(self, vmi: Obj) -> None:
        self._require_libvirt()
        running = await asyncio.to_thread(self._manager.adopt_incoming, vmi)
        if not running:
            raise MigrationError("no migrated domain runs here: the migration has not completed")
        if not self.incoming:
            return  # finalized before: nothing more to hand over
        self.incoming = False
        await self._close_target()
        self._on_finalized()

    async def _close_target(self) -> None:
        # Only a target owns these sockets; on the source they are virt-handler's.
        if self._relay is not None:
            await self._relay.close()
            self._relay = None
            for channel in ("qemu", "block"):  # QEMU leaves its listening sockets behind
                self.socket(channel).unlink(missing_ok=True)

    async def close(self) -> None:
        await self._close_target()
