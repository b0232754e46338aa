"""virt-controller's metrics: what its caches say about the cluster's VMIs and migrations,
and the replica's own status.

Every replica keeps its informers running (kube_client.controller), so any could answer;
the leader alone reports the cluster's figures, as upstream's does (see
kubevirt_metrics.leader_only), and a scrape of a non-leader returns no VMI or migration
series, only whether it leads and whether it is ready to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from kube_client.controller import SharedInformer
from kubevirt_metrics.leader_only import LeaderOnly
from virt_controller.metrics.component_status import register_component_status
from virt_controller.metrics.migration_phases import MigrationPhaseCollector
from virt_controller.metrics.migration_times import MigrationTimesCollector
from virt_controller.metrics.migration_transitions import PhaseTransitionTimes
from virt_controller.metrics.vmi_info import VMIInfoCollector
from virt_controller.metrics.vmi_transitions import VMIPhaseTransitionTimes


def register_migration_metrics(registry: CollectorRegistry, migrations: SharedInformer, vmis: SharedInformer,
                               is_leader: Callable[[], bool]) -> PhaseTransitionTimes:
    """``migrations`` and ``vmis``: the migration controller's informers (every VMIM, every VMI)."""
    registry.register(LeaderOnly(MigrationPhaseCollector(migrations), is_leader))
    registry.register(LeaderOnly(MigrationTimesCollector(vmis, migrations), is_leader))
    transitions = PhaseTransitionTimes(registry, is_leader)
    transitions.attach(migrations)
    return transitions


def register_vmi_metrics(registry: CollectorRegistry, vmis: SharedInformer,
                         pods_of: Callable[[str], list[dict[str, Any]]],
                         is_leader: Callable[[], bool]) -> VMIPhaseTransitionTimes:
    """``vmis``: the VMI controller's informer (every VMI); ``pods_of``: the launcher pods of a
    VMI's UID, from its pod cache."""
    registry.register(LeaderOnly(VMIInfoCollector(vmis, pods_of), is_leader))
    transitions = VMIPhaseTransitionTimes(registry, is_leader)
    transitions.attach(vmis)
    return transitions


__all__ = ["MigrationPhaseCollector", "MigrationTimesCollector", "PhaseTransitionTimes", "VMIInfoCollector",
           "VMIPhaseTransitionTimes", "register_component_status", "register_migration_metrics",
           "register_vmi_metrics"]
