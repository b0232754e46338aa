"""The handler's VMI loop: start the guests scheduled to this node through their launchers,
and write what the launchers' domain events say back into the VMIs' status.

Level-triggered: the last domain state each launcher reported is kept per VMI, and a
reconcile turns it into status, so a missed or repeated event changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from kubernetes import client

from grpc_support.server import service, start_server
from grpc_support.versions import info_service
from kube_client.controller import Controller, SharedInformer
from kube_client.controller.resource import Resource
from kube_client.rawapi import patch_status_of_version
from kubevirt_api import labels
from kubevirt_api.phases import VMIConditionType, VMIPhase
from kubevirt_api.pod_layout import launcher_socket, notify_socket
from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc
from virt_handler.cmd_client import LauncherClient, LauncherError
from virt_handler.event_latency import EventToStatusLatency
from virt_handler.migrations import SourceSide, TargetSide, migration_state
from virt_handler.notify_server import SUPPORTED_NOTIFY_VERSIONS, NotifyServicer
from virt_handler.vmi_status import merge_conditions, status_update

Obj = dict[str, Any]
log = logging.getLogger(__name__)

VMIS = Resource("kubevirt.io", "v1", "virtualmachineinstances")
# Most of a reconcile waits on a launcher or the API server (as upstream, which runs 10).
VMI_WORKERS = 10
# How often a VMI whose launcher is not up yet is looked at again; a launcher's Notify
# Hello wakes it at once (see _launcher_up).
LAUNCHER_WAIT_SECONDS = 1.0


def _status_from(vmi: Obj, domain: Obj) -> Obj:
    reported = domain.get("status") or {}
    return status_update(vmi, reported.get("status", "NoState"), reported.get("reason", "Unknown"),
                         (domain.get("spec") or {}).get("interfaces"))


def _domain_object(data: bytes) -> Obj:
    """The event's domain, or ValueError (which the Notify server answers with Rejected):
    a launcher's bad JSON must not stop the stream or land in the status code's cache."""
    try:
        domain = json.loads(data)
    except RecursionError:  # json's decoder recurses once per nesting level
        raise ValueError("domain_json: nested too deeply") from None
    except ValueError as error:
        raise ValueError(f"domain_json: not valid JSON: {error}") from None
    if not isinstance(domain, dict):
        raise ValueError(f"domain_json: expected an object, not {type(domain).__name__}")
    for field in ("status", "spec"):  # read below without checking their type
        if not isinstance(domain.get(field) or {}, dict):
            raise ValueError(f"domain_json: {field} must be an object")
    return domain


def _key(hello: notify_pb2.Hello) -> str:
    """The work-queue key of the VMI whose launcher sent this Hello."""
    return f"{hello.vmi_namespace}/{hello.vmi_name}"


class VMISync:
    def __init__(self, api: client.ApiClient, node_name: str, sockets_dir: Path) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.node_name = node_name
        self.sockets_dir = Path(sockets_dir)
        self._domains: dict[str, Obj] = {}   # VMI key -> the domain as its launcher last reported it
        self._uids: dict[str, str] = {}      # VMI key -> uid, to clean up after the VMI is gone
        self._migration_reports: dict[str, Obj] = {}   # VMI key -> its launcher's last migration report
        self.event_latency = EventToStatusLatency()
        # Set by the handler once NodeService serves: the two halves of a live migration.
        self.migration_source: SourceSide | None = None
        self.migration_target: TargetSide | None = None
        self._lock = threading.Lock()
        self.vmis = SharedInformer(api, VMIS, label_selector=f"{labels.NODE_NAME_LABEL}={node_name}",
                                   name=f"vmis-{node_name}")
        self.controller = Controller("handler-vmi", self.reconcile, workers=VMI_WORKERS, informers=[self.vmis])
        self.controller.watch(self.vmis)
        # The VMIs migrating to this node, seen through the label the migration controller sets.
        self.incoming = SharedInformer(api, VMIS, label_selector=f"{labels.MIGRATION_TARGET_NODE_LABEL}={node_name}",
                                       name=f"incoming-vmis-{node_name}")
        self.target_controller = Controller("handler-migration-target", self.reconcile_target, workers=1,
                                            informers=[self.incoming])
        self.target_controller.watch(self.incoming)
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="handler-grpc", daemon=True)
        self._notify_server: Any = None

    @property
    def notify_socket(self) -> Path:
        return Path(notify_socket(str(self.sockets_dir)))

    def start(self) -> None:
        self._loop_thread.start()
        self._notify_server = self._run(self._serve_notify())
        self.controller.start()
        self.target_controller.start()

    def stop(self) -> None:
        self.target_controller.stop()
        self.controller.stop()
        if self._notify_server is not None:
            self._run(self._notify_server.stop(1))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(5)

    def _run(self, coroutine: Any, timeout: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _serve_notify(self) -> Any:
        server, _ = await start_server([
            service(notify_pb2, "Notify", notify_pb2_grpc.add_NotifyServicer_to_server,
                    NotifyServicer(self._domain_event, self._launcher_up)),
            info_service("NotifyInfo", SUPPORTED_NOTIFY_VERSIONS, "kubevirt-py-handler/0.1.0"),
        ], unix_socket=self.notify_socket)
        return server

    def _launcher_up(self, hello: notify_pb2.Hello) -> None:
        """A launcher said hello: its Cmd server is up, so a VMI waiting for it goes on now
        rather than at its next poll."""
        self.controller.enqueue(_key(hello))

    def _domain_event(self, hello: notify_pb2.Hello, event: notify_pb2.DomainEvent) -> None:
        key = _key(hello)
        domain = _domain_object(event.domain_json)
        with self._lock:
            if event.type == notify_pb2.DOMAIN_LIFECYCLE:
                self._domains[key] = domain
                # Stamped after the domain is stored: a write that misses it is not counted.
                self.event_latency.event(key, event.timestamp_unix_nano)
            elif event.type == notify_pb2.DOMAIN_STATUS and (domain.get("status") or {}).get("migration"):
                self._migration_reports[key] = domain["status"]["migration"]
            else:
                return
        self.controller.enqueue(key)
        self.target_controller.enqueue(key)

    # --- reconcile ------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        vmi = self.vmis.get(key)
        stamp = self.event_latency.take(key)
        if vmi is None:
            with self._lock:
                self._domains.pop(key, None)
                self._migration_reports.pop(key, None)
                uid = self._uids.pop(key, None)
            if uid:
                self._remove_socket_dir(uid)
            return None
        with self._lock:
            self._uids[key] = vmi["metadata"]["uid"]
        with self._lock:
            domain = self._domains.get(key)
        phase = VMIPhase((vmi.get("status") or {}).get("phase", ""))
        if domain is None and phase == VMIPhase.RUNNING:
            # A restarted handler: the launcher still runs the guest and tells its state.
            domain = self._ask_launcher(key, vmi)
        if domain is not None:
            try:
                self._write_status(vmi, _status_from(vmi, domain))
            except Exception:
                self.event_latency.give_back(key, stamp)
                raise
            self.event_latency.reflected(stamp)
            vmi = self.vmis.get(key) or vmi
            phase = VMIPhase((vmi.get("status") or {}).get("phase", ""))
        if vmi["metadata"].get("deletionTimestamp") and phase == VMIPhase.RUNNING:
            return self._launcher_call(vmi, "shutdown")
        if phase == VMIPhase.RUNNING and self.migration_source is not None and migration_state(vmi):
            with self._lock:
                report = self._migration_reports.get(key)
            return self.migration_source.step(vmi, report)
        if phase == VMIPhase.SCHEDULED and domain is None:
            return self._launcher_call(vmi, "sync")
        return None

    def _socket(self, vmi: Obj) -> Path:
        return Path(launcher_socket(vmi["metadata"]["uid"], str(self.sockets_dir)))

    def reconcile_target(self, key: str) -> float | None:
        vmi = self.incoming.get(key)
        if vmi is None or self.migration_target is None:
            return None
        return self.migration_target.step(vmi)

    def migration_reports(self) -> dict[str, Obj]:
        """The launchers' last migration reports by VMI key, for readers on other threads (the
        metrics scrape). A shallow copy suffices: a report is replaced, never changed in place."""
        with self._lock:
            return dict(self._migration_reports)

    def patch_migration_state(self, vmi: Obj, changes: Obj) -> Obj:
        """Merge changes into vmi.status.migrationState, guarded by the resourceVersion read;
        returns the VMI as written."""
        return patch_status_of_version(self._custom, VMIS, vmi, {"migrationState": changes})

    def run(self, coroutine: Any) -> Any:
        return self._run(coroutine)

    def _remove_socket_dir(self, uid: str) -> None:
        """The VMI is gone and its pod with it: nothing will listen there again."""
        directory = Path(launcher_socket(uid, str(self.sockets_dir))).parent
        if directory.parent == self.sockets_dir:
            shutil.rmtree(directory, ignore_errors=True)

    def _ask_launcher(self, key: str, vmi: Obj) -> Obj | None:
        socket = self._socket(vmi)
        if not socket.exists():
            return None  # its pod is gone; the VMI controller fails the VMI

        async def get_domain() -> Obj | None:
            async with await LauncherClient.connect(socket, timeout=10) as launcher:
                return await launcher.get_domain()

        try:
            domain = self._run(get_domain(), timeout=15)
        except Exception as error:  # an unreachable launcher changes nothing we know
            log.warning("VMI %s: launcher not reachable: %s", key, error)
            return None
        if domain is not None:
            with self._lock:
                self._domains.setdefault(key, domain)
        return domain

    def _launcher_call(self, vmi: Obj, action: str) -> float | None:
        socket = self._socket(vmi)
        if not socket.exists():
            return LAUNCHER_WAIT_SECONDS  # the launcher pod is still starting
        grace = int((vmi.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

        async def call_launcher() -> None:
            async with await LauncherClient.connect(socket, timeout=60) as launcher:
                if action == "sync":
                    await launcher.sync(vmi)
                else:
                    await launcher.shutdown(vmi, grace)

        try:
            self._run(call_launcher())
        except LauncherError as error:
            self._synchronized_false(vmi, str(error))
        return None

    # --- writes ---------------------------------------------------------------------------

    def _synchronized_false(self, vmi: Obj, message: str) -> None:
        condition = {"type": VMIConditionType.SYNCHRONIZED.value, "status": "False", "reason": "SyncFailed",
                     "message": message, "lastProbeTime": None, "lastTransitionTime": None}
        status = dict(vmi.get("status") or {})
        status["conditions"] = merge_conditions(status.get("conditions") or [], [condition])
        self._write_status(vmi, status)

    def _write_status(self, vmi: Obj, status: Obj) -> None:
        if status == (vmi.get("status") or {}):
            return
        patch_status_of_version(self._custom, VMIS, vmi, status)
