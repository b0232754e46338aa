"""Reading Prometheus exposition text in tests: samples as (name, labels, value), from a
registry or from a component's /metrics over TLS verified with the cluster CA."""

from __future__ import annotations

import ssl
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, dict[str, str], float]


def samples(text: str) -> list[Sample]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def registry_samples(registry: CollectorRegistry) -> list[Sample]:
    return samples(generate_latest(registry).decode())


def scrape(url: str, ca_pem: bytes, timeout: float = 10.0) -> list[Sample]:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        return samples(response.read().decode())
