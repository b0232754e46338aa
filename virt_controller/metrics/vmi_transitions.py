"""How long VMIs take from phase to phase: upstream's three VMI histograms
(pkg/monitoring/metrics/virt-controller/perfscale_metrics.go), observed once per phase
change the VMI informer delivers, from ``status.phaseTransitionTimestamps``:

- kubevirt_vmi_phase_transition_time_seconds{phase, last_phase}: from entering the previous
  phase (from creation, for a VMI that had none) to entering this one;
- kubevirt_vmi_phase_transition_time_from_creation_seconds{phase}: from creation;
- kubevirt_vmi_phase_transition_time_from_deletion_seconds{phase}: from the deletion
  request to a final phase (Succeeded, Failed), for a VMI being deleted.

Only the leader observes, for the reason virt_controller.metrics.migration_transitions
gives. A duration is never negative: its two stamps may come from clocks that disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from kube_client.controller import SharedInformer
from kubevirt_api.phases import VMIPhase
from virt_controller.metrics.buckets import PHASE_TRANSITION_BUCKETS
from virt_controller.metrics.migration_times import epoch_seconds

Obj = dict[str, Any]

BETWEEN = "kubevirt_vmi_phase_transition_time_seconds"
FROM_CREATION = "kubevirt_vmi_phase_transition_time_from_creation_seconds"
FROM_DELETION = "kubevirt_vmi_phase_transition_time_from_deletion_seconds"
_FINAL = frozenset({VMIPhase.SUCCEEDED.value, VMIPhase.FAILED.value})


def phase_of(vmi: Obj) -> str:
    return str((vmi.get("status") or {}).get("phase") or "")


def entered(vmi: Obj, phase: str) -> float | None:
    """When the VMI last entered ``phase`` (Unix seconds), from its transition stamps."""
    stamps = [t for t in (vmi.get("status") or {}).get("phaseTransitionTimestamps") or [] if t.get("phase") == phase]
    return epoch_seconds(stamps[-1].get("phaseTransitionTimestamp")) if stamps else None


def _observe(histogram: Histogram, start: float | None, end: float) -> None:
    if start is not None:
        histogram.observe(max(0.0, end - start))


class VMIPhaseTransitionTimes:
    def __init__(self, registry: CollectorRegistry, is_leader: Callable[[], bool]) -> None:
        self._is_leader = is_leader
        histogram = {"buckets": PHASE_TRANSITION_BUCKETS, "registry": registry}
        self.between = Histogram(BETWEEN, "Seconds VMIs took from entering one phase (last_phase) to entering "
                                 "the next (phase).", labelnames=("phase", "last_phase"), **histogram)
        self.from_creation = Histogram(FROM_CREATION, "Seconds from a VMI's creation to its entering each phase.",
                                       labelnames=("phase",), **histogram)
        self.from_deletion = Histogram(FROM_DELETION, "Seconds from a VMI's deletion request to its reaching a "
                                       "final phase.", labelnames=("phase",), **histogram)

    def attach(self, vmis: SharedInformer) -> None:
        vmis.add_event_handler(on_update=self.updated)

    def updated(self, old: Obj, new: Obj) -> None:
        phase, last = phase_of(new), phase_of(old)
        if phase == last or not phase or not self._is_leader():
            return
        reached = entered(new, phase)
        if reached is None:
            return
        meta = new["metadata"]
        created = epoch_seconds(meta.get("creationTimestamp"))
        _observe(self.between.labels(phase=phase, last_phase=last), entered(new, last) if last else created, reached)
        _observe(self.from_creation.labels(phase=phase), created, reached)
        if meta.get("deletionTimestamp") and phase in _FINAL:
            _observe(self.from_deletion.labels(phase=phase), epoch_seconds(meta["deletionTimestamp"]), reached)
