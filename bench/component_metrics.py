"""Our components' /metrics on a bench cluster, scraped over HTTPS with the cluster CA,
and the quantile of a Prometheus histogram the way histogram_quantile() estimates it."""

from __future__ import annotations

import base64
import math
import ssl
import urllib.request
from collections.abc import Iterator, Mapping

from prometheus_client.parser import text_string_to_metric_families

from bench.vmi_density import Cluster
from pki.cluster_ca import SECRET as CA_SECRET

COMPONENTS_SELECTOR = "prometheus.kubevirt.io=true"
METRICS_PORT = 8443
Sample = tuple[str, dict[str, str], float]


def component_samples(cluster: Cluster) -> Iterator[Sample]:
    """Every sample of every component pod with /metrics (virt-api, -controller, -handler)."""
    secret = cluster.core.read_namespaced_secret(CA_SECRET, "kubevirt", _request_timeout=30)
    context = ssl.create_default_context(cadata=base64.b64decode(secret.data["tls.crt"]).decode())
    pods = cluster.core.list_namespaced_pod("kubevirt", label_selector=COMPONENTS_SELECTOR, _request_timeout=30).items
    if not pods:
        raise RuntimeError(f"no component pods labelled {COMPONENTS_SELECTOR}")
    for pod in pods:
        if not pod.status.pod_ip:
            continue
        url = f"https://{pod.status.pod_ip}:{METRICS_PORT}/metrics"
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            text = answer.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                yield sample.name, dict(sample.labels), sample.value


def histogram_buckets(cluster: Cluster, metric: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts (upper bound -> count), summed over pods."""
    buckets: dict[float, float] = {}
    for name, labels, value in component_samples(cluster):
        if name == f"{metric}_bucket":
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def histogram_quantile(quantile: float, buckets: Mapping[float, float]) -> float:
    """Linear interpolation inside the bucket the quantile falls in (as Prometheus does);
    NaN without observations, the highest finite bound if it falls in +Inf."""
    bounds = sorted(buckets)
    total = buckets.get(math.inf, 0.0)
    if not bounds or total <= 0:
        return math.nan
    rank = quantile * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = bound, count
    return lower
