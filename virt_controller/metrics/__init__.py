"""virt-controller's metrics: what its caches say about the cluster's migrations.

Every replica keeps its informers running (kube_client.controller), so any could answer;
the leader alone reports, as upstream's does (see kubevirt_metrics.leader_only), and a
scrape of a non-leader returns no migration series.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from kube_client.controller import SharedInformer
from kubevirt_metrics.leader_only import LeaderOnly
from virt_controller.metrics.migration_phases import MigrationPhaseCollector
from virt_controller.metrics.migration_times import MigrationTimesCollector
from virt_controller.metrics.migration_transitions import PhaseTransitionTimes


def register_migration_metrics(registry: CollectorRegistry, migrations: SharedInformer, vmis: SharedInformer,
                               is_leader: Callable[[], bool]) -> PhaseTransitionTimes:
    """``migrations`` and ``vmis``: the migration controller's informers (every VMIM, every VMI)."""
    registry.register(LeaderOnly(MigrationPhaseCollector(migrations), is_leader))
    registry.register(LeaderOnly(MigrationTimesCollector(vmis, migrations), is_leader))
    transitions = PhaseTransitionTimes(registry, is_leader)
    transitions.attach(migrations)
    return transitions


__all__ = ["MigrationPhaseCollector", "MigrationTimesCollector", "PhaseTransitionTimes",
           "register_migration_metrics"]
