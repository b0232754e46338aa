"""A component's own registry, with the process metrics every exporter is expected to carry.

A private registry rather than prometheus_client's global one: tests run several
components in one process, and each must expose only its own metrics.
"""

from __future__ import annotations

from prometheus_client import (CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector,
                               disable_created_metrics)


def component_registry() -> CollectorRegistry:
    # Upstream's Go exporters have no *_created series next to counters and histograms; a
    # process-wide switch, and every process that builds a registry is one of our components.
    disable_created_metrics()
    registry = CollectorRegistry()
    # The Python counterparts of the go_* and process_* series upstream's Go components export.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
