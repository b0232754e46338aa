"""How many migrations are in which phase, and which ones ended how: upstream's
virt-controller migration collector (pkg/monitoring/metrics/virt-controller/
migrationstats_collector.go), counted from the migration informer's cache at scrape time.

The phases between Scheduling and the end count as running, as upstream counts them.
Every finished VMIM still in the cache is one series of ``kubevirt_vmi_migration_succeeded``
or ``_failed`` {vmi, vmim, namespace} with value 1; the migration controller keeps the
newest five finished per VMI, so the series go when it deletes the older ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from kubevirt_api.phases import MigrationPhase
from virt_controller.metrics.lister import Lister

Obj = dict[str, Any]

RESULT_LABELS = ("vmi", "vmim", "namespace")
# Upstream's later phases (WaitingForSync, Synchronizing: decentralized migration) count as
# running too; listed so a VMIM written by a newer controller is counted the same.
_RUNNING = frozenset({MigrationPhase.SCHEDULED.value, MigrationPhase.PREPARING_TARGET.value,
                      MigrationPhase.TARGET_READY.value, MigrationPhase.RUNNING.value,
                      "WaitingForSync", "Synchronizing"})

# (metric, help, phase bucket)
_IN_PHASE = (
    ("kubevirt_vmi_migrations_in_pending_phase", "Number of current pending migrations.", "pending"),
    ("kubevirt_vmi_migrations_in_scheduling_phase", "Number of current scheduling migrations.", "scheduling"),
    ("kubevirt_vmi_migrations_in_unset_phase", "Number of current unset migrations. These are pending items "
                                               "the virt-controller hasn't processed yet from the queue.", "unset"),
    ("kubevirt_vmi_migrations_in_running_phase", "Number of current running migrations.", "running"),
)
_SUCCEEDED = ("kubevirt_vmi_migration_succeeded", "Indicates if the VMI migration succeeded.")
_FAILED = ("kubevirt_vmi_migration_failed", "Indicates if the VMI migration failed.")


def phase_of(migration: Obj) -> str:
    return str((migration.get("status") or {}).get("phase") or "")


def phase_bucket(phase: str) -> str | None:
    """Which in-phase gauge counts a migration in this phase (None: a finished or unknown one)."""
    if phase == MigrationPhase.UNSET.value:
        return "unset"
    if phase == MigrationPhase.PENDING.value:
        return "pending"
    if phase == MigrationPhase.SCHEDULING.value:
        return "scheduling"
    return "running" if phase in _RUNNING else None


def _result_labels(migration: Obj) -> list[str]:
    meta = migration["metadata"]
    return [str((migration.get("spec") or {}).get("vmiName") or ""), str(meta.get("name") or ""),
            str(meta.get("namespace") or "")]


def _families() -> tuple[list[GaugeMetricFamily], GaugeMetricFamily, GaugeMetricFamily]:
    return ([GaugeMetricFamily(name, text) for name, text, _ in _IN_PHASE],
            GaugeMetricFamily(*_SUCCEEDED, labels=RESULT_LABELS), GaugeMetricFamily(*_FAILED, labels=RESULT_LABELS))


class MigrationPhaseCollector:
    def __init__(self, migrations: Lister) -> None:
        self._migrations = migrations

    def describe(self) -> Iterator[Metric]:
        in_phase, succeeded, failed = _families()
        return iter([*in_phase, succeeded, failed])

    def collect(self) -> Iterator[Metric]:
        in_phase, succeeded, failed = _families()
        counts: Counter[str] = Counter()
        for migration in self._migrations.list():
            phase = phase_of(migration)
            if phase == MigrationPhase.SUCCEEDED.value:
                succeeded.add_metric(_result_labels(migration), 1)
            elif phase == MigrationPhase.FAILED.value:
                failed.add_metric(_result_labels(migration), 1)
            elif (bucket := phase_bucket(phase)) is not None:
                counts[bucket] += 1
        for family, (_, _, bucket) in zip(in_phase, _IN_PHASE):
            family.add_metric([], counts[bucket])
        return iter([*in_phase, succeeded, failed])
