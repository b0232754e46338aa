"""The migration controller: one VirtualMachineInstanceMigration (VMIM) moves one running
VMI to another node, as upstream's (pkg/virt-controller/watch/migration.go).

The controller owns the target launcher pod and the VMIM's phase; the virt-handlers on
the two nodes move the guest. They talk through ``vmi.status.migrationState`` and two
VMI labels. This docstring is the contract the handlers are built to.

Phases (vmim.status.phase; each change appends to status.phaseTransitionTimestamps)
------------------------------------------------------------------------------------
  ""              -> Pending          accepted: the VMI is live-migratable (its LiveMigratable
                                      condition, else kubevirt_api.migratability on its spec) and
                                      no other unfinished migration of the VMI is ahead of it.
                                      Otherwise -> Failed (condition Failed, reason
                                      NotLiveMigratable / MigrationInProgress), as upstream fails
                                      a second migration rather than queueing it.
  Pending         -> Scheduling       the controller created the target pod (once: expectations);
                                      it waits first while the VMI is not Running, while an older
                                      migration of the same VMI is unfinished, while another
                                      launcher pod of the VMI besides the source still exists, and
                                      while parallelMigrationsPerCluster migrations are in flight
                                      or parallelOutboundMigrationsPerNode leave the source node.
  Scheduling      -> Scheduled        the target pod is Running and Ready.
  Scheduled       -> PreparingTarget  HAND-OFF, written by the controller (below).
  PreparingTarget -> TargetReady      the TARGET handler set migrationState.targetNodeAddress.
  TargetReady     -> Running          the SOURCE handler set migrationState.startTimestamp.
  Running         -> Succeeded        the SOURCE handler set migrationState.completed=true and
                                      failed is not true; the controller then moves the VMI to
                                      the target node (below).
  any             -> Failed           see "Failures".

Hand-off (controller -> handlers), written when the target pod is Ready
----------------------------------------------------------------------
1. vmi.status.migrationState is replaced by (earlier migrations' fields are removed):
     migrationUid     the VMIM's metadata.uid
     sourceNode       vmi.status.nodeName
     sourcePod        the name of the VMI's launcher pod on the source node (when found)
     targetNode       the target pod's spec.nodeName
     targetPod        the target pod's name
     mode             "PreCopy"
     migrationConfiguration   the effective cluster settings (kubevirt_api.migration_config):
                      bandwidthPerMigration, completionTimeoutPerGiB, progressTimeout,
                      allowAutoConverge, allowPostCopy, ...
   The patch carries the VMI's resourceVersion, so it never overwrites a handler's write.
2. then the VMI label kubevirt.io/migrationTargetNodeName=<targetNode> is set, which is
   what makes the target node's handler see the VMI (the source handler keeps seeing it
   through kubevirt.io/nodeName). The label stays after the migration, as upstream's does.

What the handlers must write (VMI status subresource, merge patches with resourceVersion)
-----------------------------------------------------------------------------------------
TARGET handler (node == migrationState.targetNode, VMI labelled for it):
  - prepare the target launcher (the pod named migrationState.targetPod) to receive the
    domain, then set migrationState.targetNodeAddress (where the source handler reaches
    its migration endpoint)                                  -> VMIM TargetReady
  - optionally migrationState.targetNodeDomainDetected=true / targetNodeDomainReadyTimestamp
    once the domain runs there (informational; the controller does not wait for them).
SOURCE handler (node == migrationState.sourceNode == vmi.status.nodeName):
  - when targetNodeAddress is set and neither abortRequested nor completed is: write
    migrationState.startTimestamp (and mode if it differs) WITH the resourceVersion it
    read, and only after that write succeeded start the libvirt migration; on a conflict
    re-read and decide again (so a cancel written meanwhile is never missed)
                                                             -> VMIM Running
  - when the migration ends: endTimestamp, completed=true, and failed=true plus
    failureReason when it did not succeed                    -> VMIM Succeeded / Failed
  - after success the source handler shuts its launcher down, but only once the VMI's
    kubevirt.io/nodeName label no longer names its node (the controller moves it right
    after completed=true): until then the source pod must stay up, see "Succeeded".
  - abortRequested=true (the VMIM was deleted while the migration runs): cancel the
    libvirt migration and set abortStatus "Aborting" while it is being cancelled, then
    "Succeeded" together with completed=true, failed=true, endTimestamp when it was
    cancelled (guest stays on the source)                    -> VMIM Failed
    or "Failed" when it could not be (the migration then ends normally, completed=true
    and failed as it turned out)                             -> VMIM Succeeded / Failed
  - never start a migration whose migrationState has abortRequested, completed or failed.

What the controller does after the handlers
-------------------------------------------
Succeeded, in this order: the target pod becomes the VMI's controlled pod (its owner
  reference gets controller=true; target pods are created owned but not controlled, see
  launcher_pod.migration_target_pod), the source pod loses controller=true, then
  vmi.status.nodeName = targetNode, vmi.status.activePods gains the target pod (entries
  on the source node are dropped), vmi.status.evacuationNodeName is cleared, and last
  the label kubevirt.io/nodeName moves to targetNode.
  vmim.status.migrationState gets a copy of the final vmi.status.migrationState.
Failed: nodeName and labels stay on the source; the target pod is deleted (never a pod
  on vmi.status.nodeName). If the migration was handed off but never started
  (no startTimestamp), the controller itself writes completed=true, failed=true,
  start/endTimestamp and a failureReason into the VMI's migrationState so both handlers
  see it is over and clean up.

Failures (reason in the VMIM condition {type: Failed, status: "True", reason, message})
  VMINotFound, VMIShutdown (the VMI ended or is being deleted), NotLiveMigratable (or the
  LiveMigratable condition's reason), MigrationInProgress, Canceled (deleted before the
  hand-off, or handed off and not yet started), TargetPodDown (failed, succeeded or being
  deleted), TargetPodDisappeared, TargetPodTimeout (unschedulable 5 min / pending 15 min,
  or the annotations kubevirt.io/migrationUnschedulablePodTimeoutSeconds and
  kubevirt.io/migrationPendingPodTimeoutSeconds), MigrationStateLost (the VMI's
  migrationState was cleared or taken by another migration), MigrationFailed (the source
  handler's failed=true; its failureReason is the message), Aborted.

Cancel: deleting a VMIM. The kubevirt.io/migrationJobFinalize finalizer (added by the
mutating webhook, and by this controller when missing) keeps it until the migration is
final. Before the hand-off it is Failed (Canceled) at once; handed off but not started,
the controller marks the VMI's migrationState aborted itself (abortRequested,
abortStatus Succeeded, completed, failed); once started, the controller sets
migrationState.abortRequested=true and the VMIM condition migrationAbortRequested, and
waits for the source handler's verdict. Then the finalizer goes.

Finished migrations beyond the newest five per VMI are deleted, as upstream does.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client

from kube_client.controller import Controller, UIDTrackingControllerExpectations
from kube_client.rawapi import MERGE_PATCH, call, object_key, patch_status_of_version
from kube_client.recorder import NORMAL, WARNING, EventRecorder
from kube_client.timestamps import now_text, parse_time
from kubevirt_api import labels
from kubevirt_api.groups import MIGRATION
from kubevirt_api.migratability import migratability
from kubevirt_api.migration_config import CachedMigrationConfig, MigrationConfig
from kubevirt_api.objects import condition, vmi_phase
from kubevirt_api.phases import MigrationAbortStatus, MigrationMode, MigrationPhase, VMIConditionType, VMIPhase
from virt_controller.informers import (BY_MIGRATION, BY_UID, BY_VMI, MIGRATIONS, VMIS, ClusterInformers,
                                       migration_vmi_key, ownership)
from virt_controller.launcher_pod import LAUNCHER_IMAGE, MIGRATION_JOB_NAME_ANNOTATION, migration_target_pod

Obj = dict[str, Any]
log = logging.getLogger(__name__)

ABORT_REQUESTED_CONDITION = "migrationAbortRequested"   # upstream's VMIM condition type
MIGRATION_SELECTOR_LABEL = "kubevirt.io/vmi-name"        # upstream's, on a VMIM: its VMI's name
FAILED_CONDITION = "Failed"
UNSCHEDULABLE_TIMEOUT_ANNOTATION = "kubevirt.io/migrationUnschedulablePodTimeoutSeconds"
PENDING_TIMEOUT_ANNOTATION = "kubevirt.io/migrationPendingPodTimeoutSeconds"
UNSCHEDULABLE_TIMEOUT_SECONDS = 5 * 60
PENDING_TIMEOUT_SECONDS = 15 * 60
FINISHED_KEPT_PER_VMI = 5
_HANDED_OFF = (MigrationPhase.PREPARING_TARGET, MigrationPhase.TARGET_READY, MigrationPhase.RUNNING)
_TARGET_CREATED = (MigrationPhase.SCHEDULING, MigrationPhase.SCHEDULED, *_HANDED_OFF)
_ORDER = list(MigrationPhase)


def _parse(stamp: Any) -> datetime.datetime | None:
    try:
        return parse_time(str(stamp))
    except ValueError:
        return None


def migration_phase(migration: Obj) -> MigrationPhase:
    try:
        return MigrationPhase((migration.get("status") or {}).get("phase", ""))
    except ValueError:
        return MigrationPhase.UNSET


def is_final(migration: Obj) -> bool:
    return migration_phase(migration).is_final


def _age_order(migration: Obj) -> tuple[str, str]:
    meta = migration["metadata"]
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def _pod_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return (status.get("phase") == "Running" and (ready is None or ready.get("status") == "True")
            and not pod["metadata"].get("deletionTimestamp"))


def _pod_down(pod: Obj) -> bool:
    return ((pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")
            or bool(pod["metadata"].get("deletionTimestamp")))


def _pod_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def _timeout_annotation(migration: Obj, name: str, default: int) -> int:
    value = (migration["metadata"].get("annotations") or {}).get(name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        log.warning("migration %s: annotation %s=%r is not a number of seconds", object_key(migration), name, value)
        return default


class _Status:
    """The VMIM status this pass wants, built up and written once."""

    def __init__(self, migration: Obj) -> None:
        self.original = migration.get("status") or {}
        self.status: Obj = {**self.original}
        self.failure: tuple[str, str] | None = None

    @property
    def phase(self) -> MigrationPhase:
        try:
            return MigrationPhase(self.status.get("phase", ""))
        except ValueError:
            return MigrationPhase.UNSET

    def move(self, phase: MigrationPhase) -> None:
        if self.phase == phase:
            return
        self.status["phase"] = phase.value
        self.status["phaseTransitionTimestamps"] = [*(self.status.get("phaseTransitionTimestamps") or []),
                                                    {"phase": phase.value, "phaseTransitionTimestamp": now_text()}]

    def fail(self, reason: str, message: str) -> None:
        self.failure = (reason, message)
        self.set_condition(FAILED_CONDITION, reason, message)
        self.move(MigrationPhase.FAILED)

    def set_condition(self, kind: str, reason: str = "", message: str = "") -> None:
        conditions = [c for c in self.status.get("conditions") or [] if c.get("type") != kind]
        existing = next((c for c in self.status.get("conditions") or [] if c.get("type") == kind), None)
        if existing is not None and existing.get("status") == "True" and existing.get("reason", "") == reason:
            return
        self.status["conditions"] = [*conditions, {"type": kind, "status": "True", "reason": reason,
                                                   "message": message, "lastProbeTime": None,
                                                   "lastTransitionTime": now_text()}]

    def has_condition(self, kind: str) -> bool:
        return any(c.get("type") == kind and c.get("status") == "True" for c in self.status.get("conditions") or [])

    @property
    def changed(self) -> bool:
        return self.status != self.original


class MigrationController:
    def __init__(self, api: client.ApiClient, *, launcher_image: str = LAUNCHER_IMAGE,
                 config: MigrationConfig | Callable[[], MigrationConfig] | None = None, workers: int = 2,
                 leader: Any = None, recorder: EventRecorder | None = None,
                 unschedulable_timeout: int = UNSCHEDULABLE_TIMEOUT_SECONDS,
                 pending_timeout: int = PENDING_TIMEOUT_SECONDS, informers: ClusterInformers | None = None) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._image = launcher_image
        if config is None:
            config = CachedMigrationConfig(api)
        self._config: Callable[[], MigrationConfig] = config if callable(config) else (lambda: config)
        self._recorder = recorder or EventRecorder(api, "virt-controller")
        self._unschedulable_timeout = unschedulable_timeout
        self._pending_timeout = pending_timeout
        self.expectations = UIDTrackingControllerExpectations()
        # Target pods created but not yet seen, across migrations: the parallelism limits
        # must count them, so no second creation is decided on a stale cache.
        self._start_lock = threading.Lock()
        self._creating: set[str] = set()

        shared = informers or ClusterInformers(api)
        self.migrations = shared.migrations
        self.vmis = shared.vmis
        self.pods = shared.launcher_pods
        self.controller = Controller("migration", self.reconcile, workers=workers,
                                     **ownership(informers, self.migrations, self.vmis, self.pods), leader=leader)
        self.controller.watch(self.migrations)
        self.migrations.add_event_handler(on_update=self._migration_updated, on_delete=self._migration_gone)
        self.controller.watch(self.vmis, keys=self._migrations_of_vmi)
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)

    def start(self) -> None:
        self.controller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.controller.stop(timeout)

    # --- events -----------------------------------------------------------------------------

    def _migrations_of_vmi(self, vmi: Obj) -> list[str]:
        return self.migrations.index_keys("vmi", object_key(vmi))

    def _migration_updated(self, old: Obj, new: Obj) -> None:
        if is_final(new) and not is_final(old):
            self._wake_pending()

    def _migration_gone(self, migration: Obj) -> None:
        if not is_final(migration):
            self._wake_pending()

    def _wake_pending(self) -> None:
        """A migration ended: those waiting for room under the parallelism limits may go."""
        for migration in self.migrations.list():
            if migration_phase(migration) == MigrationPhase.PENDING:
                self.controller.enqueue(object_key(migration))

    def _pod_migration_key(self, pod: Obj) -> str | None:
        meta = pod["metadata"]
        name = (meta.get("annotations") or {}).get(MIGRATION_JOB_NAME_ANNOTATION)
        if not name or labels.MIGRATION_JOB_LABEL not in (meta.get("labels") or {}):
            return None
        return f"{meta.get('namespace', '')}/{name}"

    def _wake_for_pod(self, pod: Obj) -> None:
        key = self._pod_migration_key(pod)
        if key is not None:
            self.controller.enqueue(key)
        # Any launcher pod of a VMI (its source pod too) matters to that VMI's migrations:
        # a new one waits for an old target pod to be gone.
        uid = (pod["metadata"].get("labels") or {}).get(labels.CREATED_BY_LABEL)
        if uid:
            for vmi in self.vmis.by_index(BY_UID, uid):
                for other in self._migrations_of_vmi(vmi):
                    if other != key:
                        self.controller.enqueue(other)

    def _pod_added(self, pod: Obj) -> None:
        key = self._pod_migration_key(pod)
        if key is not None:
            if pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key, pod["metadata"]["uid"])
            else:
                self.expectations.creation_observed(key)
        self._wake_for_pod(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old is new:
            return  # a resync: nothing changed
        key = self._pod_migration_key(new)
        if key is not None and new["metadata"].get("deletionTimestamp"):
            self.expectations.deletion_observed(key, new["metadata"]["uid"])
        self._wake_for_pod(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._pod_migration_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, pod["metadata"].get("uid", ""))
        self._wake_for_pod(pod)

    # --- reconcile ----------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        try:
            return self._reconcile(key)
        except client.ApiException as error:
            if error.status != 409:
                raise
            # Our cache was behind a write (ours or a handler's): the newer version is on
            # its way and wakes us; look again soon in any case.
            log.debug("migration %s: conflict, retrying on the newer version", key)
            return 0.5

    def _reconcile(self, key: str) -> float | None:
        migration = self.migrations.get(key)
        if migration is None:
            self.expectations.delete_expectations(key)
            with self._start_lock:
                self._creating.discard(key)
            return None
        vmi = self.vmis.get(migration_vmi_key(migration))
        pods = self._target_pods(migration, vmi)
        if is_final(migration):
            return self._finished(key, migration, vmi, pods)
        if not migration["metadata"].get("deletionTimestamp"):
            migration = self._set_finalizer(migration, present=True)
            migration = self._ensure_selector_label(migration)
        if not self.expectations.satisfied(key):
            return None  # our pod write is on its way into the cache; its arrival wakes us
        status = _Status(migration)
        again = self._advance(key, migration, vmi, pods, status)
        if status.changed:
            migration = self._write_status(migration, status.status)
            if status.failure is not None:
                log.info("migration %s failed: %s: %s", key, *status.failure)
                self._event(migration, WARNING, "FailedMigration", f"{status.failure[0]}: {status.failure[1]}")
            elif status.phase == MigrationPhase.SUCCEEDED:
                self._event(migration, NORMAL, "SuccessfulMigration", "Source node reported migration succeeded")
        return again

    def _target_pods(self, migration: Obj, vmi: Obj | None) -> list[Obj]:
        namespace = migration["metadata"].get("namespace")
        pods = [p for p in self.pods.by_index(BY_MIGRATION, migration["metadata"]["uid"])
                if p["metadata"].get("namespace") == namespace]
        if vmi is not None:
            pods = [p for p in pods if (p["metadata"].get("labels") or {}).get(labels.CREATED_BY_LABEL)
                    == vmi["metadata"]["uid"]]
        # The live one first: a pod being deleted is only a leftover.
        return sorted(pods, key=lambda p: (bool(p["metadata"].get("deletionTimestamp")),
                                           p["metadata"].get("creationTimestamp") or ""))

    def _advance(self, key: str, migration: Obj, vmi: Obj | None, pods: list[Obj], status: _Status) -> float | None:
        """Decide this pass's phase and act; returns when to look again (None: on the next event)."""
        phase = status.phase
        uid = migration["metadata"]["uid"]
        deleting = bool(migration["metadata"].get("deletionTimestamp"))
        pod = pods[0] if pods else None
        if vmi is None:
            if self._vmi_exists(migration):
                return 0.5  # created a moment ago, not yet in our cache
            status.fail("VMINotFound", f"the VMI {migration_vmi_key(migration)} does not exist")
            return None
        state = _own_state(vmi, uid)
        handed_off = phase in _HANDED_OFF
        if vmi["metadata"].get("deletionTimestamp") or vmi_phase(vmi).is_final:
            status.fail("VMIShutdown", "the VMI shut down or is being deleted during the migration")
            return None
        if deleting and not handed_off:
            status.set_condition(ABORT_REQUESTED_CONDITION, "Deleted", "the migration was deleted")
            status.fail("Canceled", "the migration was deleted before the target was handed off")
            return None
        if pod is not None and _pod_down(pod) and phase != MigrationPhase.UNSET:
            status.fail("TargetPodDown", f"the target pod {pod['metadata']['name']} shut down during the migration")
            self._mark_failed_on_vmi(vmi, state, "target pod is down")
            return None
        if pod is None and phase in _TARGET_CREATED:
            status.fail("TargetPodDisappeared", "the target pod was removed during the migration")
            self._mark_failed_on_vmi(vmi, state, "target pod disappeared")
            return None
        if handed_off and state is None:
            status.fail("MigrationStateLost", "the VMI's migration state was cleared or taken over by another "
                                              "migration")
            return None
        if state is not None and state.get("failed"):
            status.fail("MigrationFailed", str(state.get("failureReason")
                                               or "the source node reported the migration failed"))
            return None
        if state is not None and state.get("abortStatus") == MigrationAbortStatus.SUCCEEDED.value:
            status.fail("Aborted", "the migration was aborted")
            return None
        if deleting:  # handed off: only the source handler can stop it now
            status.set_condition(ABORT_REQUESTED_CONDITION, "Deleted", "the migration was deleted")
            assert state is not None
            if not state.get("startTimestamp") and not state.get("completed"):
                self._abort_unstarted(vmi, state)
                return None
            self._request_abort(vmi, state)
        return self._progress(key, migration, vmi, pod, state, status)

    def _progress(self, key: str, migration: Obj, vmi: Obj, pod: Obj | None, state: Obj | None,
                  status: _Status) -> float | None:
        phase = status.phase
        if phase == MigrationPhase.UNSET:
            refusal = self._refusal(migration, vmi)
            if refusal is not None:
                status.fail(*refusal)
            else:
                status.move(MigrationPhase.PENDING)
            return None
        if phase == MigrationPhase.PENDING:
            if pod is not None:
                status.move(MigrationPhase.SCHEDULING)
                return None
            # Asked again before a target pod exists: the VMI may have changed (or our
            # cache caught up) since the migration was accepted.
            refusal = self._not_migratable(vmi)
            if refusal is not None:
                status.fail(*refusal)
                return None
            return self._maybe_create_target(key, migration, vmi)
        if phase == MigrationPhase.SCHEDULING:
            assert pod is not None
            if _pod_ready(pod):
                status.move(MigrationPhase.SCHEDULED)
                return None
            return self._pending_pod_timeout(key, migration, pod, status)
        if phase == MigrationPhase.SCHEDULED:
            assert pod is not None
            if not _pod_ready(pod):
                return None
            vmi = self._hand_off(migration, vmi, pod)
            self._event(migration, NORMAL, "SuccessfulHandOver",
                        "Migration target pod is ready for preparation by virt-handler.")
            status.move(MigrationPhase.PREPARING_TARGET)
            return None
        assert state is not None
        self._label_target(vmi, str(state.get("targetNode") or ""))
        if phase == MigrationPhase.PREPARING_TARGET:
            if state.get("targetNodeAddress") or state.get("startTimestamp"):
                status.move(MigrationPhase.TARGET_READY)
        elif phase == MigrationPhase.TARGET_READY:
            if state.get("startTimestamp") or state.get("completed"):
                status.move(MigrationPhase.RUNNING)
        elif phase == MigrationPhase.RUNNING:
            if state.get("completed") and not state.get("failed"):
                self._move_vmi_to_target(vmi, state, pod)
                status.status["migrationState"] = dict(state)
                status.move(MigrationPhase.SUCCEEDED)
        return None

    # --- admission of a new migration -----------------------------------------------------------

    @staticmethod
    def _not_migratable(vmi: Obj) -> tuple[str, str] | None:
        """The handler's LiveMigratable condition when it reported one, else the spec's answer."""
        found = condition(vmi, VMIConditionType.LIVE_MIGRATABLE.value)
        if found is not None:
            if found.get("status") != "True":
                return (str(found.get("reason") or "NotLiveMigratable"),
                        str(found.get("message") or "the VMI is not live-migratable"))
            return None
        computed = migratability(vmi)
        return None if computed.migratable else (computed.reason or "NotLiveMigratable", computed.message)

    def _refusal(self, migration: Obj, vmi: Obj) -> tuple[str, str] | None:
        refusal = self._not_migratable(vmi)
        if refusal is not None:
            return refusal
        ahead = self._ahead(migration, vmi)
        if ahead is not None and (_state_uid(vmi) == ahead["metadata"]["uid"]
                                  or migration_phase(ahead) != MigrationPhase.UNSET):
            return ("MigrationInProgress", f"migration {ahead['metadata']['name']} of this VMI is in progress; "
                                           f"only one migration of a VMI runs at a time")
        return None

    def _ahead(self, migration: Obj, vmi: Obj) -> Obj | None:
        """An unfinished migration of the same VMI that goes first: the one the VMI's
        migrationState names, else the oldest."""
        uid = migration["metadata"]["uid"]
        others = [m for m in self.migrations.by_index(BY_VMI, migration_vmi_key(migration))
                  if m["metadata"]["uid"] != uid and not is_final(m)]
        current = _state_uid(vmi)
        for other in others:
            if other["metadata"]["uid"] == current:
                return other
        older = [m for m in others if _age_order(m) < _age_order(migration)]
        return min(older, key=_age_order) if older else None

    # --- the target pod -----------------------------------------------------------------------

    def _maybe_create_target(self, key: str, migration: Obj, vmi: Obj) -> float | None:
        if vmi_phase(vmi) != VMIPhase.RUNNING:
            return None  # woken when the VMI changes
        if self._ahead(migration, vmi) is not None:
            return 1.0
        config = self._config()
        with self._start_lock:
            self._creating = {k for k in self._creating if not self.expectations.satisfied(k)}
            if self._creating:
                return 1.0  # another target pod is on its way into the cache: count it first
            vmi_uid = vmi["metadata"]["uid"]
            others = [p for p in self.pods.by_index(BY_VMI, vmi_uid)
                      if not _pod_terminated(p)
                      and (p["metadata"].get("labels") or {}).get(labels.MIGRATION_JOB_LABEL)
                      != migration["metadata"]["uid"]]
            if len(others) > 1:
                log.info("migration %s: waiting for an earlier target pod of the VMI to go away", key)
                return 1.0
            running = self._in_flight(exclude=migration["metadata"]["uid"])
            if len(running) >= config.parallelMigrationsPerCluster:
                log.info("migration %s: %d migrations in flight, the cluster limit; waiting", key, len(running))
                return 5.0
            source = (vmi.get("status") or {}).get("nodeName")
            outbound = sum(1 for m in running
                           if ((self.vmis.get(migration_vmi_key(m)) or {}).get("status") or {}).get("nodeName")
                           == source)
            if outbound >= config.parallelOutboundMigrationsPerNode:
                log.info("migration %s: %d outbound migrations from %s, the node limit; waiting",
                         key, outbound, source)
                return 5.0
            self._create_target(key, migration, vmi)
            self._creating.add(key)
        return None

    def _in_flight(self, exclude: str) -> list[Obj]:
        """Migrations past Pending, or Pending with a target pod already made."""
        found = []
        for migration in self.migrations.list():
            if migration["metadata"]["uid"] == exclude or is_final(migration):
                continue
            if migration_phase(migration) in _TARGET_CREATED or self.pods.index_keys(
                    "migration", migration["metadata"]["uid"]):
                found.append(migration)
        return found

    def _create_target(self, key: str, migration: Obj, vmi: Obj) -> None:
        self.expectations.expect_creations(key, 1)
        try:
            pod = call(self._core.create_namespaced_pod, vmi["metadata"]["namespace"],
                       migration_target_pod(vmi, migration, self._image))
        except Exception as error:
            self.expectations.creation_observed(key)  # never to be seen
            self._event(migration, WARNING, "FailedCreate", f"Error creating the migration target pod: {error}")
            raise
        self._event(migration, NORMAL, "SuccessfulCreate", f"Created migration target pod {pod['metadata']['name']}")

    def _pending_pod_timeout(self, key: str, migration: Obj, pod: Obj, status: _Status) -> float | None:
        pod_status = pod.get("status") or {}
        created = _parse(pod["metadata"].get("creationTimestamp"))
        if pod_status.get("phase", "Pending") != "Pending" or created is None:
            return None
        waited = (datetime.datetime.now(datetime.UTC) - created).total_seconds()
        unschedulable = any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                            and c.get("reason") == "Unschedulable" for c in pod_status.get("conditions") or [])
        limits = [_timeout_annotation(migration, PENDING_TIMEOUT_ANNOTATION, self._pending_timeout)]
        if unschedulable:
            limits.append(_timeout_annotation(migration, UNSCHEDULABLE_TIMEOUT_ANNOTATION,
                                              self._unschedulable_timeout))
            self._event(migration, WARNING, "MigrationTargetPodUnschedulable",
                        f"Migration target pod for VMI {migration_vmi_key(migration)} is currently unschedulable.")
        limit = min(limits)
        if waited < limit:
            return limit - waited + 0.5
        self._delete_pods(key, [pod])
        status.fail("TargetPodTimeout", f"the target pod {pod['metadata']['name']} stayed pending for "
                                        f"{int(waited)}s{' (unschedulable)' if unschedulable else ''}")
        return None

    def _delete_pods(self, key: str, pods: list[Obj]) -> None:
        doomed = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if not doomed:
            return
        self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in doomed])
        for pod in doomed:
            try:
                call(self._core.delete_namespaced_pod, pod["metadata"]["name"], pod["metadata"]["namespace"])
            except client.ApiException as error:
                self.expectations.deletion_observed(key, pod["metadata"]["uid"])
                if error.status != 404:
                    raise

    # --- the VMI ------------------------------------------------------------------------------

    def _hand_off(self, migration: Obj, vmi: Obj, pod: Obj) -> Obj:
        current = (vmi.get("status") or {}).get("migrationState") or {}
        if current.get("migrationUid") == migration["metadata"]["uid"]:
            # Already handed off (our own phase write is not in the cache yet): writing it
            # again would erase what the handlers have added since.
            self._label_target(vmi, str(current.get("targetNode") or ""))
            return vmi
        source_node = (vmi.get("status") or {}).get("nodeName") or ""
        state: Obj = {
            "migrationUid": migration["metadata"]["uid"],
            "sourceNode": source_node,
            "targetNode": pod["spec"].get("nodeName") or "",
            "targetPod": pod["metadata"]["name"],
            "mode": MigrationMode.PRE_COPY.value,
            "migrationConfiguration": self._config().to_api(),
        }
        source_pod = self._source_pod(vmi, source_node)
        if source_pod is not None:
            state["sourcePod"] = source_pod["metadata"]["name"]
        replaced = {**{k: None for k in current}, **state}   # merge patch: drop the previous migration's fields
        vmi = self._patch_vmi_status(vmi, {"migrationState": replaced})
        self._label_target(vmi, state["targetNode"])
        log.info("migration %s handed off: %s -> %s", object_key(migration), source_node, state["targetNode"])
        return vmi

    def _source_pod(self, vmi: Obj, node: str) -> Obj | None:
        """The VMI's controlled launcher pod on its node (the one its guest runs in)."""
        uid = vmi["metadata"]["uid"]
        for pod in self.pods.by_index(BY_VMI, uid):
            if (pod.get("spec") or {}).get("nodeName") == node and not _pod_terminated(pod) and any(
                    o.get("uid") == uid and o.get("controller") for o in pod["metadata"].get("ownerReferences") or []):
                return pod
        return None

    def _label_target(self, vmi: Obj, node: str) -> None:
        if not node or (vmi["metadata"].get("labels") or {}).get(labels.MIGRATION_TARGET_NODE_LABEL) == node:
            return
        self._patch_vmi_labels(vmi, {labels.MIGRATION_TARGET_NODE_LABEL: node})

    def _request_abort(self, vmi: Obj, state: Obj) -> None:
        if state.get("abortRequested") or state.get("completed"):
            return
        self._patch_vmi_status(vmi, {"migrationState": {"abortRequested": True}})
        log.info("migration %s of %s: abort requested", state.get("migrationUid"), object_key(vmi))

    def _abort_unstarted(self, vmi: Obj, state: Obj) -> None:
        """Handed off but not started: nothing runs that the source handler must stop, so the
        controller ends it itself (the source handler never starts an aborted migration)."""
        now = now_text()
        self._patch_vmi_status(vmi, {"migrationState": {
            "abortRequested": True, "abortStatus": MigrationAbortStatus.SUCCEEDED.value, "completed": True,
            "failed": True, "failureReason": "migration canceled before it started",
            "startTimestamp": now, "endTimestamp": now}})

    def _mark_failed_on_vmi(self, vmi: Obj, state: Obj | None, reason: str) -> None:
        """A handed-off migration whose target is gone before it started: the handlers must
        see it is over (upstream's handleMarkMigrationFailedOnVMI)."""
        if state is None or state.get("startTimestamp") or state.get("completed") or state.get("failed"):
            return
        now = now_text()
        self._patch_vmi_status(vmi, {"migrationState": {
            "completed": True, "failed": True, "failureReason": state.get("failureReason") or reason,
            "startTimestamp": now, "endTimestamp": now}})

    def _move_vmi_to_target(self, vmi: Obj, state: Obj, pod: Obj | None) -> Obj:
        target = str(state.get("targetNode") or "")
        source = str(state.get("sourceNode") or "")
        status = vmi.get("status") or {}
        if not target:
            return vmi
        # The controller flag goes to the target pod first: the source pod is still up
        # (its handler waits for the label to move), so the VMI controller never sees the
        # VMI without a live controlled pod.
        if pod is not None and pod["metadata"]["name"] == state.get("targetPod"):
            self._set_controlled(pod, vmi["metadata"]["uid"], True)
        for old in self.pods.by_index(BY_VMI, vmi["metadata"]["uid"]):
            if old["metadata"]["name"] != state.get("targetPod"):
                self._set_controlled(old, vmi["metadata"]["uid"], False)
        changes: Obj = {}
        if status.get("nodeName") != target:
            changes["nodeName"] = target
        active = dict(status.get("activePods") or {})
        wanted = {uid: node for uid, node in active.items() if node != source or source == target}
        if pod is not None and pod["metadata"]["name"] == state.get("targetPod"):
            wanted[pod["metadata"]["uid"]] = target
        if wanted != active:
            changes["activePods"] = {**{uid: None for uid in active if uid not in wanted}, **wanted}
        if status.get("evacuationNodeName"):
            changes["evacuationNodeName"] = None
        if changes:
            vmi = self._patch_vmi_status(vmi, changes)
        if (vmi["metadata"].get("labels") or {}).get(labels.NODE_NAME_LABEL) != target:
            vmi = self._patch_vmi_labels(vmi, {labels.NODE_NAME_LABEL: target})
            log.info("VMI %s now runs on %s (migrated from %s)", object_key(vmi), target, source)
        return vmi

    # --- a finished migration -----------------------------------------------------------------

    def _finished(self, key: str, migration: Obj, vmi: Obj | None, pods: list[Obj]) -> float | None:
        phase = migration_phase(migration)
        uid = migration["metadata"]["uid"]
        state = _own_state(vmi, uid) if vmi is not None else None
        if vmi is not None and phase == MigrationPhase.SUCCEEDED and state is not None \
                and state.get("completed") and not state.get("failed"):
            self._move_vmi_to_target(vmi, state, pods[0] if pods else None)
        if phase == MigrationPhase.FAILED:
            if vmi is not None:
                self._mark_failed_on_vmi(vmi, state, "the migration failed before it started")
            node = ((vmi or {}).get("status") or {}).get("nodeName")
            # Never the pod the guest runs in: that is the one on the VMI's node.
            self._delete_pods(key, [p for p in pods if (p.get("spec") or {}).get("nodeName") != node or not node])
        if state is not None and state.get("completed") and \
                (migration.get("status") or {}).get("migrationState") != state:
            migration = self._write_status(migration, {**(migration.get("status") or {}),
                                                       "migrationState": dict(state)})
        self._set_finalizer(migration, present=False)
        with self._start_lock:
            self._creating.discard(key)
        if vmi is None:
            if not migration["metadata"].get("deletionTimestamp"):
                self._delete_migration(migration)  # upstream removes migrations of deleted VMIs
            return None
        self._collect_garbage(vmi)
        return None

    def _collect_garbage(self, vmi: Obj) -> None:
        finished = sorted((m for m in self.migrations.by_index(BY_VMI, object_key(vmi))
                           if is_final(m) and not m["metadata"].get("deletionTimestamp")), key=_age_order)
        for old in finished[:max(0, len(finished) - FINISHED_KEPT_PER_VMI)]:
            self._delete_migration(old)

    # --- writes -------------------------------------------------------------------------------

    def _write_status(self, migration: Obj, status: Obj) -> Obj:
        original = migration.get("status") or {}
        body = {**{k: None for k in original if k not in status}, **status}
        return patch_status_of_version(self._custom, MIGRATIONS, migration, body)

    def _set_finalizer(self, migration: Obj, present: bool) -> Obj:
        meta = migration["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if (labels.MIGRATION_FINALIZER in finalizers) == present:
            return migration
        wanted = (finalizers + [labels.MIGRATION_FINALIZER] if present
                  else [f for f in finalizers if f != labels.MIGRATION_FINALIZER])
        try:
            return call(self._custom.patch_namespaced_custom_object, MIGRATIONS.group, MIGRATIONS.version,
                        meta["namespace"], MIGRATIONS.plural, meta["name"],
                        {"metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}},
                        _content_type=MERGE_PATCH)
        except client.ApiException as error:
            if error.status != 404:
                raise
            return migration

    def _ensure_selector_label(self, migration: Obj) -> Obj:
        """The label that finds a VMI's migrations (the mutating webhook sets it; made sure
        of here, as upstream does, for migrations created without the webhook)."""
        meta = migration["metadata"]
        vmi_name = (migration.get("spec") or {}).get("vmiName")
        if not vmi_name or MIGRATION_SELECTOR_LABEL in (meta.get("labels") or {}):
            return migration
        return call(self._custom.patch_namespaced_custom_object, MIGRATIONS.group, MIGRATIONS.version,
                    meta["namespace"], MIGRATIONS.plural, meta["name"],
                    {"metadata": {"labels": {MIGRATION_SELECTOR_LABEL: vmi_name},
                                  "resourceVersion": meta["resourceVersion"]}}, _content_type=MERGE_PATCH)

    def _delete_migration(self, migration: Obj) -> None:
        meta = migration["metadata"]
        log.info("deleting migration %s/%s", meta["namespace"], meta["name"])
        try:
            call(self._custom.delete_namespaced_custom_object, MIGRATIONS.group, MIGRATIONS.version,
                 meta["namespace"], MIGRATIONS.plural, meta["name"])
        except client.ApiException as error:
            if error.status != 404:
                raise

    def _vmi_exists(self, migration: Obj) -> bool:
        """Asked of the server: a cache that has not caught up must not fail a migration."""
        try:
            call(self._custom.get_namespaced_custom_object, VMIS.group, VMIS.version,
                 migration["metadata"]["namespace"], VMIS.plural, (migration.get("spec") or {}).get("vmiName", ""))
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def _patch_vmi_status(self, vmi: Obj, changes: Obj) -> Obj:
        return patch_status_of_version(self._custom, VMIS, vmi, changes)

    def _patch_vmi_labels(self, vmi: Obj, changes: dict[str, str]) -> Obj:
        meta = vmi["metadata"]
        return call(self._custom.patch_namespaced_custom_object, VMIS.group, VMIS.version, meta["namespace"],
                    VMIS.plural, meta["name"], {"metadata": {"labels": changes}}, _content_type=MERGE_PATCH)

    def _set_controlled(self, pod: Obj, owner_uid: str, controller: bool) -> None:
        owners = pod["metadata"].get("ownerReferences") or []
        if not any(o.get("uid") == owner_uid and bool(o.get("controller")) != controller for o in owners):
            return
        wanted = [{**o, "controller": controller} if o.get("uid") == owner_uid else o for o in owners]
        try:
            call(self._core.patch_namespaced_pod, pod["metadata"]["name"], pod["metadata"]["namespace"],
                 {"metadata": {"ownerReferences": wanted}}, _content_type=MERGE_PATCH)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def _event(self, migration: Obj, kind: str, reason: str, message: str) -> None:
        self._recorder.record(MIGRATION.kind, migration, kind, reason, message)


def _state_uid(vmi: Obj) -> str:
    return str(((vmi.get("status") or {}).get("migrationState") or {}).get("migrationUid") or "")


def _own_state(vmi: Obj, uid: str) -> Obj | None:
    state = (vmi.get("status") or {}).get("migrationState") or None
    return state if state is not None and state.get("migrationUid") == uid else None
