"""Resource quantities: what a pod requests and what a node can give.

A pod's request is what its containers need at the busiest moment: the regular
containers together (plus sidecars, init containers that keep running), or a single
init container on top of the sidecars started before it, whichever is larger,
plus the pod's overhead. A limit without a request counts as the request, the
default kube-apiserver would have written.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from kube_client.quantity import parse_quantity

Obj = dict[str, Any]
Resources = dict[str, Decimal]
log = logging.getLogger(__name__)

CPU, MEMORY, PODS = "cpu", "memory", "pods"
# Scoring only: a pod that requests nothing still takes something, so that many
# such pods do not all pile onto one node.
NON_ZERO_DEFAULTS: Resources = {CPU: Decimal("0.1"), MEMORY: Decimal(200 * 1024 * 1024)}


def parse_resources(raw: Obj | None) -> Resources:
    parsed: Resources = {}
    for name, text in (raw or {}).items():
        try:
            parsed[name] = Decimal(parse_quantity(text))
        except (ValueError, TypeError, ArithmeticError):
            log.warning("ignoring unparsable quantity %s=%r", name, text)
    return parsed


def add_into(total: Resources, more: Resources) -> Resources:
    for name, amount in more.items():
        total[name] = total.get(name, Decimal(0)) + amount
    return total


def _max_into(total: Resources, other: Resources) -> Resources:
    for name, amount in other.items():
        total[name] = max(total.get(name, Decimal(0)), amount)
    return total


def container_requests(container: Obj) -> Resources:
    resources = container.get("resources") or {}
    requests = parse_resources(resources.get("limits"))
    requests.update(parse_resources(resources.get("requests")))
    return requests


def pod_requests(pod: Obj) -> Resources:
    spec = pod.get("spec") or {}
    regular: Resources = {}
    for container in spec.get("containers") or []:
        add_into(regular, container_requests(container))
    sidecars: Resources = {}
    peak: Resources = {}
    for container in spec.get("initContainers") or []:
        requests = container_requests(container)
        if container.get("restartPolicy") == "Always":
            add_into(sidecars, requests)
            _max_into(peak, sidecars)
        else:
            _max_into(peak, add_into(dict(sidecars), requests))
    total = _max_into(add_into(regular, sidecars), peak)
    return add_into(total, parse_resources(spec.get("overhead")))


def allocatable(node: Obj) -> Resources:
    """status.allocatable; hand-made nodes that only state capacity get that instead."""
    status = node.get("status") or {}
    return parse_resources(status.get("allocatable") or status.get("capacity"))


def is_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def with_non_zero_defaults(requests: Resources) -> Resources:
    adjusted = dict(requests)
    for name, default in NON_ZERO_DEFAULTS.items():
        if not adjusted.get(name):
            adjusted[name] = default
    return adjusted
