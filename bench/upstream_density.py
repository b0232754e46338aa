"""Upstream KubeVirt's density benchmark shape on a local cluster with libvirt's test driver:
--count minimal VMIs created 100 ms apart, then --count minimal VMs the same way. Figures per
phase: creation -> Running p50/p95 (client-side: the create call to the first watch event
showing the VMI Running) and the API calls per VMI made by our components (virt-controller,
virt-handler, virt-api), counted client-side by verb and resource from every component's
kubevirt_rest_client_requests_total, scraped over HTTPS with the cluster CA before the first
create and once all are Running (the deletes that follow are not counted), as upstream's
perf-scale reports do. Background requests (leases, heartbeats) in that window are included.
Used by bench.run (row "upstream").
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from bench.component_metrics import component_samples
from bench.vmi_density import GROUP, NAMESPACE, VERSION, Cluster, Tracker, density_vmi, log, wait_until

Obj = dict[str, Any]
REQUESTS = "kubevirt_rest_client_requests_total"
INTERVAL_SECONDS = 0.1  # upstream's density test creates one object every 100 ms
Calls = collections.Counter  # (verb, resource) -> requests


def scrape_requests(cluster: Cluster) -> Calls:
    """Requests made so far by every component with /metrics, summed by (verb, resource)."""
    calls: Calls = collections.Counter()
    for name, labels, value in component_samples(cluster):
        if name == REQUESTS:
            calls[(labels.get("verb", ""), labels.get("resource", ""))] += value
    return calls


def minimal_vm(name: str) -> Obj:
    """A VM whose template is the minimal test-driver VMI; its VMI takes the VM's name."""
    vmi = density_vmi(name)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMachine",
            "metadata": {"name": name, "labels": {"bench": "upstream-density"}},
            "spec": {"runStrategy": "Always",
                     "template": {"metadata": {"annotations": vmi["metadata"]["annotations"]},
                                  "spec": vmi["spec"]}}}


def _create_spaced(create: Callable[[str], None], names: list[str]) -> dict[str, float]:
    """Creates one object per interval on a fixed schedule, so a slow call does not stretch
    the spacing of the others; the monotonic time of each create call."""
    started: dict[str, float] = {}
    begin = time.monotonic()
    for index, name in enumerate(names):
        time.sleep(max(0.0, begin + index * INTERVAL_SECONDS - time.monotonic()))
        started[name] = time.monotonic()
        create(name)
    return started


def phase(cluster: Cluster, kind: str, count: int, timeout: float) -> Obj:
    """kind "vmi" or "vm": creates count of them, waits for their VMIs Running, deletes them."""
    plural = "virtualmachineinstances" if kind == "vmi" else "virtualmachines"
    names = [f"up-{kind}-{index:03d}" for index in range(count)]

    def create(name: str) -> None:
        body = density_vmi(name) if kind == "vmi" else minimal_vm(name)
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, body, _request_timeout=60)

    def delete(name: str) -> None:
        try:
            cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name,
                                                           _request_timeout=60)
        except Exception as error:  # noqa: BLE001 - cleanup goes on; the wait below is bounded
            log(f"upstream density: delete {name}: {error}")

    before = scrape_requests(cluster)
    tracker = Tracker(cluster)
    tracker.start()
    started: dict[str, float] = {}
    try:
        log(f"upstream density: {count} {kind}s, {INTERVAL_SECONDS * 1000:.0f} ms apart")
        started = _create_spaced(create, names)
        all_running = wait_until(lambda: tracker.running(names) == count, timeout, 0.2)
        after = scrape_requests(cluster)
        with tracker.lock:
            latencies = [tracker.running_at[name] - started[name] for name in names if name in tracker.running_at]
        if not all_running:
            log(f"upstream density: {len(latencies)}/{count} {kind}s Running after {timeout:.0f}s")
    finally:
        for name in started:
            delete(name)
        gone = wait_until(lambda: not [v for v in cluster.vmis() if v["metadata"]["name"].startswith("up-")]
                          and not cluster.launcher_pods(), timeout, 1.0)
        tracker.stop()
        if not gone:
            log(f"upstream density: {kind}s not all gone within {timeout:.0f}s")
    calls = after - before
    return {"kind": kind, "count": count, "latencies": latencies,
            "calls_per_vmi": {key: value / count for key, value in calls.items() if value > 0}}
