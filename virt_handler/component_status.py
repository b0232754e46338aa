"""virt-handler's own status, as upstream exports it (pkg/monitoring/metrics/virt-handler/
component_metrics.go). Whether a handler is up at all is left to Prometheus' ``up`` series
(upstream's kubevirt_virt_handler_up is a recording rule over it, not a metric).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from kubevirt_metrics.status_gauge import StatusGauge

READY = "kubevirt_virt_handler_ready_status"


def register_component_status(registry: CollectorRegistry, is_ready: Callable[[], bool]) -> None:
    registry.register(StatusGauge(READY, "1 while this virt-handler serves requests (NodeService up, its VMI "
                                         "caches synced), else 0.", is_ready))
