"""Evacuation: live-migrate VMIs off a node that is being drained, in the simple form of
upstream's evacuation controller.

A node is being drained when it is cordoned (spec.unschedulable=true, what ``kubectl
drain`` does first) or carries the drain taint (migrations.nodeDrainTaintKey, default
kubevirt.io/drain). Every Running VMI on it whose spec.evictionStrategy is LiveMigrate
or LiveMigrateIfPossible gets status.evacuationNodeName=<node> and a migration named
kubevirt-evacuation-<random> (annotation kubevirt.io/evacuationMigration=<node>). A VMI
that already has status.evacuationNodeName equal to its node (set by whoever evicts it)
is evacuated whatever its node's state, unless its strategy is External (someone else
moves it; virt-api's eviction check marks it for them).

- A VMI that cannot live-migrate is left alone (logged and an event): upstream blocks its
  eviction instead; nothing here would make the migration succeed.
- Never more than one unfinished migration per VMI; and no more new ones than
  parallelMigrationsPerCluster leaves room for, the rest wait for a later pass.
- After a failed evacuation migration the next one waits 20 s, doubling per failure in a
  row, as upstream's migration back-off.
The migration controller clears evacuationNodeName when the VMI has moved.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from kubernetes import client

from kube_client.controller import Controller, ControllerExpectations
from kube_client.rawapi import call, object_key, patch_status_of_version
from kube_client.recorder import WARNING, EventRecorder
from kube_client.timestamps import parse_time
from kubevirt_api import labels
from kubevirt_api.groups import API_VERSION, MIGRATION, VIRTUAL_MACHINE_INSTANCE
from kubevirt_api.migratability import reported_migratability
from kubevirt_api.migration_config import CachedMigrationConfig, MigrationConfig
from kubevirt_api.objects import vmi_phase
from kubevirt_api.phases import EvictionStrategy, MigrationPhase, VMIPhase
from virt_controller.informers import (BY_NODE, BY_VMI, MIGRATIONS, VMIS, ClusterInformers, migration_vmi_key,
                                       ownership)
from virt_controller.migration_controller import MIGRATION_SELECTOR_LABEL, is_final, migration_phase

Obj = dict[str, Any]
log = logging.getLogger(__name__)

EVACUATION_ANNOTATION = "kubevirt.io/evacuationMigration"   # upstream's; value: the node evacuated
EVACUATION_PREFIX = "kubevirt-evacuation-"
BACKOFF_BASE_SECONDS = 20.0
RETRY_SECONDS = 5.0
_EVICTION_STRATEGIES = (EvictionStrategy.LIVE_MIGRATE.value, EvictionStrategy.LIVE_MIGRATE_IF_POSSIBLE.value)


def _parse(stamp: Any) -> datetime.datetime | None:
    try:
        return parse_time(str(stamp))
    except ValueError:
        return None


def node_draining(node: Obj, taint_key: str) -> bool:
    spec = node.get("spec") or {}
    return bool(spec.get("unschedulable")) or any(
        t.get("key") == taint_key and t.get("effect") in ("NoSchedule", "NoExecute")
        for t in spec.get("taints") or [])


class EvacuationController:
    def __init__(self, api: client.ApiClient, *, config: MigrationConfig | Callable[[], MigrationConfig] | None = None,
                 leader: Any = None, recorder: EventRecorder | None = None,
                 informers: ClusterInformers | None = None) -> None:
        self._custom = client.CustomObjectsApi(api)
        if config is None:
            config = CachedMigrationConfig(api)
        self._config: Callable[[], MigrationConfig] = config if callable(config) else (lambda: config)
        self._recorder = recorder or EventRecorder(api, "virt-controller")
        self.expectations = ControllerExpectations()   # per VMI key: its evacuation migration
        shared = informers or ClusterInformers(api)
        self.nodes = shared.nodes
        self.vmis = shared.vmis
        self.migrations = shared.migrations
        self.controller = Controller("evacuation", self.reconcile,
                                     **ownership(informers, self.nodes, self.vmis, self.migrations),
                                     leader=leader)
        self.controller.watch(self.nodes)
        self.controller.watch(self.vmis, keys=self._vmi_nodes)
        self.migrations.add_event_handler(on_add=self._migration_seen, on_update=lambda _old, new: self._wake(new),
                                          on_delete=self._wake)

    def start(self) -> None:
        self.controller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.controller.stop(timeout)

    # --- events -----------------------------------------------------------------------------

    @staticmethod
    def _vmi_nodes(vmi: Obj) -> list[str]:
        nodes = {(vmi["metadata"].get("labels") or {}).get(labels.NODE_NAME_LABEL),
                 (vmi.get("status") or {}).get("evacuationNodeName")}
        return [n for n in nodes if n]

    def _migration_seen(self, migration: Obj) -> None:
        if EVACUATION_ANNOTATION in (migration["metadata"].get("annotations") or {}):
            self.expectations.creation_observed(migration_vmi_key(migration))
        self._wake(migration)

    def _wake(self, migration: Obj) -> None:
        vmi = self.vmis.get(migration_vmi_key(migration))
        if vmi is not None:
            for node in self._vmi_nodes(vmi):
                self.controller.enqueue(node)

    # --- reconcile ----------------------------------------------------------------------------

    def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        config = self._config()
        draining = node is not None and node_draining(node, config.nodeDrainTaintKey)
        again: float | None = None
        wanted: list[Obj] = []
        for vmi in self.vmis.by_index(BY_NODE, name):
            if not self._should_evacuate(vmi, name, draining):
                continue
            ready, wait = self._may_start(vmi)
            if wait is not None:
                again = wait if again is None else min(again, wait)
            if ready:
                wanted.append(vmi)
        unfinished = sum(1 for m in self.migrations.list() if not is_final(m))
        room = max(0, config.parallelMigrationsPerCluster - unfinished)
        for vmi in sorted(wanted, key=object_key)[:room]:
            self._evacuate(vmi, name)
        if len(wanted) > room:
            again = RETRY_SECONDS if again is None else min(again, RETRY_SECONDS)
        return again

    def _should_evacuate(self, vmi: Obj, node: str, draining: bool) -> bool:
        if vmi["metadata"].get("deletionTimestamp") or vmi_phase(vmi) != VMIPhase.RUNNING:
            return False
        if (vmi.get("status") or {}).get("nodeName") != node:
            return False
        marked = (vmi.get("status") or {}).get("evacuationNodeName") == node
        strategy = (vmi.get("spec") or {}).get("evictionStrategy")
        if strategy == EvictionStrategy.EXTERNAL.value:
            return False  # marked for whoever moves it; not ours to migrate
        if not marked and not (draining and strategy in _EVICTION_STRATEGIES):
            return False
        answer = reported_migratability(vmi)
        migratable, why = answer.migratable, answer.message or answer.reason
        if not migratable:
            log.info("VMI %s is not live-migratable, not evacuating it from %s: %s", object_key(vmi), node, why)
            self._recorder.record(VIRTUAL_MACHINE_INSTANCE.kind, vmi, WARNING, "EvacuationBlocked",
                                  f"cannot live-migrate the VMI off node {node}: {why}")
            return False
        return True

    def _may_start(self, vmi: Obj) -> tuple[bool, float | None]:
        """(whether the VMI may get a new migration now, when to look again if not)."""
        key = object_key(vmi)
        if not self.expectations.satisfied(key):
            return False, None  # the migration just created wakes us when it arrives
        migrations = self.migrations.by_index(BY_VMI, key)
        if any(not is_final(m) for m in migrations):
            return False, None  # one is in flight: its end wakes us
        evacuations = sorted((m for m in migrations if EVACUATION_ANNOTATION in
                              (m["metadata"].get("annotations") or {})),
                             key=lambda m: str(m["metadata"].get("creationTimestamp") or ""), reverse=True)
        failures = 0
        last_failure: datetime.datetime | None = None
        for migration in evacuations:
            if migration_phase(migration) != MigrationPhase.FAILED:
                break
            failures += 1
            if last_failure is None:
                stamps = [t for t in (migration.get("status") or {}).get("phaseTransitionTimestamps") or []
                          if t.get("phase") == MigrationPhase.FAILED.value]
                last_failure = _parse(stamps[-1].get("phaseTransitionTimestamp")) if stamps else None
        if failures == 0 or last_failure is None:
            return True, None
        backoff = BACKOFF_BASE_SECONDS * 2 ** (failures - 1)
        left = backoff - (datetime.datetime.now(datetime.UTC) - last_failure).total_seconds()
        return (False, left) if left > 0 else (True, None)

    def _evacuate(self, vmi: Obj, node: str) -> None:
        meta = vmi["metadata"]
        key = object_key(vmi)
        if (vmi.get("status") or {}).get("evacuationNodeName") != node:
            patch_status_of_version(self._custom, VMIS, vmi, {"evacuationNodeName": node})
        self.expectations.expect_creations(key, 1)
        try:
            created = call(self._custom.create_namespaced_custom_object, MIGRATIONS.group, MIGRATIONS.version,
                           meta["namespace"], MIGRATIONS.plural, {
                               "apiVersion": API_VERSION, "kind": MIGRATION.kind,
                               "metadata": {"generateName": EVACUATION_PREFIX, "namespace": meta["namespace"],
                                            "labels": {MIGRATION_SELECTOR_LABEL: meta["name"]},
                                            "annotations": {EVACUATION_ANNOTATION: node}},
                               "spec": {"vmiName": meta["name"]}})
        except Exception:
            self.expectations.creation_observed(key)
            raise
        log.info("evacuating VMI %s from node %s with migration %s", key, node, created["metadata"]["name"])
