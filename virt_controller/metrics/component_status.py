"""virt-controller's own status, as upstream exports it (pkg/monitoring/metrics/
virt-controller/component_metrics.go): whether this replica leads, and whether it is ready
to (its caches have synced). Every replica reports both, the leader and the others alike,
so that the series of all replicas together say how many could take over.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from kubevirt_metrics.status_gauge import StatusGauge

LEADING = "kubevirt_virt_controller_leading_status"
READY = "kubevirt_virt_controller_ready_status"


def register_component_status(registry: CollectorRegistry, is_leader: Callable[[], bool],
                              is_ready: Callable[[], bool]) -> None:
    registry.register(StatusGauge(LEADING, "1 while this virt-controller replica holds the lead, else 0.",
                                  is_leader))
    registry.register(StatusGauge(READY, "1 while this virt-controller replica is ready to take the lead "
                                         "(running; leading, once its caches have synced), else 0.", is_ready))
