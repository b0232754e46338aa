"""kubevirt_vmi_migration_phase_transition_time_from_creation_seconds{phase}: how long after
its creation a VMIM reached each phase, as upstream observes it (pkg/monitoring/metrics/
virt-controller/migration_metrics.go): once per phase change the informer delivers, from
``status.phaseTransitionTimestamps``.

A histogram has to be observed as things happen; it cannot be recomputed from the cache,
which forgets finished migrations. Only the leader observes, as only upstream's leader
has the handler attached, so the replicas' histograms do not repeat one another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from kube_client.controller import SharedInformer
from virt_controller.metrics.buckets import PHASE_TRANSITION_BUCKETS
from virt_controller.metrics.migration_phases import phase_of
from virt_controller.metrics.migration_times import epoch_seconds

Obj = dict[str, Any]

METRIC = "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds"


def seconds_to_phase(migration: Obj, phase: str) -> float | None:
    """From creation to the (last) transition into ``phase``; never negative, as the two
    stamps may come from clocks that disagree."""
    created = epoch_seconds(migration["metadata"].get("creationTimestamp"))
    stamps = [t for t in (migration.get("status") or {}).get("phaseTransitionTimestamps") or []
              if t.get("phase") == phase]
    reached = epoch_seconds(stamps[-1].get("phaseTransitionTimestamp")) if stamps else None
    if created is None or reached is None:
        return None
    return max(0.0, reached - created)


class PhaseTransitionTimes:
    def __init__(self, registry: CollectorRegistry, is_leader: Callable[[], bool]) -> None:
        self._is_leader = is_leader
        self.histogram = Histogram(METRIC, "Histogram of VM migration phase transitions duration from creation "
                                   "time in seconds.", labelnames=("phase",), buckets=PHASE_TRANSITION_BUCKETS,
                                   registry=registry)

    def attach(self, migrations: SharedInformer) -> None:
        migrations.add_event_handler(on_update=self.updated)

    def updated(self, old: Obj, new: Obj) -> None:
        phase = phase_of(new)
        if phase == phase_of(old) or not phase or not self._is_leader():
            return
        seconds = seconds_to_phase(new, phase)
        if seconds is not None:
            self.histogram.labels(phase=phase).observe(seconds)
