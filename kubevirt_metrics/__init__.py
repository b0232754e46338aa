"""Prometheus metrics for the kubevirt-py components: one registry per process, served on
``/metrics`` over TLS (port 8443, as upstream's components), and the command-line flag
that turns it on or off.

Metric values are computed at scrape time by custom collectors reading the component's
caches, so a restart or a missed event never leaves a gauge stale.
"""

from kubevirt_metrics.flags import DEFAULT_METRICS_PORT, add_metrics_port_argument
from kubevirt_metrics.registry import component_registry
from kubevirt_metrics.server import MetricsServer
from kubevirt_metrics.tls import serving_context

__all__ = ["DEFAULT_METRICS_PORT", "MetricsServer", "add_metrics_port_argument", "component_registry",
           "serving_context"]
