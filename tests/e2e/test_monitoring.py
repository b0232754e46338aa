"""Debian's real Prometheus scraping a local cluster with deploy/monitoring/'s own scrape
job and rules: every component's /metrics is scraped over HTTPS (verified with the cluster
CA), a VMI's metric and the recording rules answer through Prometheus' HTTP API, no alert
is pending on a healthy cluster, every dashboard query is accepted, and every metric the
rules and the dashboard read is one the components export.

The job is prometheus-kubevirt.yaml's, relabelling and all. Only its discovery is
replaced: Debian builds Prometheus without Kubernetes discovery, so a file lists what
Kubernetes' pod role would find (one target per declared container port of every pod in
namespace kubevirt, with its __meta_kubernetes_* labels), and the relabelling picks the
metrics ports out of them as it would on a real cluster.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pki.cluster_ca import SECRET as CA_SECRET
from tests.e2e.cluster import Kubevirt, local_kubevirt, vm_manifest
from tests.monitoring.prometheus import (RULES, SCRAPE_CONFIG, Prometheus, as_sent_by_grafana, dashboard,
                                         dashboard_exprs, exported_by_us, referenced_families)
from tests.wait import eventually

# Not skipped without Prometheus: build.sh installs it, and a skip would hide a machine
# where it did not.
pytestmark = pytest.mark.slow

NAMESPACE = "kubevirt"
VMI = "monitored"
# Per component: how many pods the local cluster runs on one node.
EXPECTED_PODS = {"virt-api": 2, "virt-controller": 2, "virt-handler": 1}
METRICS_PORT = 8443


@pytest.fixture(scope="module")
def kubevirt() -> Iterator[Kubevirt]:
    """One node is enough to run every component, and starts faster than two."""
    with local_kubevirt(nodes=1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def vmi(kubevirt: Kubevirt) -> dict:
    template = vm_manifest(VMI, "Always", test_driver=True)["spec"]["template"]
    kubevirt.create("virtualmachineinstances", {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": VMI, **template["metadata"]}, "spec": template["spec"]})
    return eventually(lambda: kubevirt.running_vmi(VMI), timeout=60, what="the VMI running", interval=0.5)


def _component_pods(kubevirt: Kubevirt) -> list[client.V1Pod] | None:
    """The component pods, once each component has its pods running with an address."""
    pods = [p for p in kubevirt.core.list_namespaced_pod(NAMESPACE).items
            if p.status.phase == "Running" and p.status.pod_ip and not p.metadata.deletion_timestamp]
    counts = {name: sum(1 for p in pods if (p.metadata.labels or {}).get("kubevirt.io") == name)
              for name in EXPECTED_PODS}
    return pods if counts == EXPECTED_PODS else None


def _sanitized(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_role_targets(pods: list[client.V1Pod]) -> list[dict[str, Any]]:
    """What Prometheus' kubernetes_sd_configs role "pod" yields for these pods."""
    groups = []
    for pod in pods:
        meta = {"__meta_kubernetes_namespace": pod.metadata.namespace,
                "__meta_kubernetes_pod_name": pod.metadata.name,
                "__meta_kubernetes_pod_ip": pod.status.pod_ip,
                "__meta_kubernetes_pod_node_name": pod.spec.node_name or "",
                "__meta_kubernetes_pod_phase": pod.status.phase,
                "__meta_kubernetes_pod_uid": pod.metadata.uid}
        for key, value in (pod.metadata.labels or {}).items():
            meta[f"__meta_kubernetes_pod_label_{_sanitized(key)}"] = value
            meta[f"__meta_kubernetes_pod_labelpresent_{_sanitized(key)}"] = "true"
        for container in pod.spec.containers:
            ports = container.ports or []
            for port in ports:
                groups.append({"targets": [f"{pod.status.pod_ip}:{port.container_port}"], "labels": {
                    **meta, "__meta_kubernetes_pod_container_name": container.name,
                    "__meta_kubernetes_pod_container_port_name": port.name or "",
                    "__meta_kubernetes_pod_container_port_number": str(port.container_port),
                    "__meta_kubernetes_pod_container_port_protocol": port.protocol or "TCP"}})
            if not ports:  # the pod role's target for a container that declares no port
                groups.append({"targets": [pod.status.pod_ip],
                               "labels": {**meta, "__meta_kubernetes_pod_container_name": container.name}})
    return groups


def scrape_config(workdir: Path, ca_file: Path, targets_file: Path) -> dict[str, Any]:
    """prometheus-kubevirt.yaml, discovering through ``targets_file``, fast enough for a test."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES)]
    job = copy.deepcopy(config["scrape_configs"][0])
    del job["kubernetes_sd_configs"]
    job["file_sd_configs"] = [{"files": [str(targets_file)], "refresh_interval": "1s"}]
    job["tls_config"]["ca_file"] = str(ca_file)
    config["scrape_configs"] = [job]
    return config


@pytest.fixture(scope="module")
def prometheus(kubevirt: Kubevirt, vmi: dict) -> Iterator[Prometheus]:
    pods = eventually(lambda: _component_pods(kubevirt), timeout=60, what="every component pod running",
                      interval=0.5)
    workdir = Path(tempfile.mkdtemp(prefix="kv-prometheus-", dir="/tmp"))
    try:
        ca = kubevirt.core.read_namespaced_secret(CA_SECRET, NAMESPACE).data["tls.crt"]
        (workdir / "kubevirt-ca.crt").write_bytes(base64.b64decode(ca))
        (workdir / "targets.json").write_text(json.dumps(pod_role_targets(pods)))
        config = scrape_config(workdir, workdir / "kubevirt-ca.crt", workdir / "targets.json")
        with Prometheus(config, workdir) as server:
            expected = {f"{p.status.pod_ip}:{METRICS_PORT}" for p in pods
                        if (p.metadata.labels or {}).get("prometheus.kubevirt.io") == "true"}

            def all_up() -> bool:
                active = server.api("targets", state="active")["activeTargets"]
                return ({t["labels"]["instance"] for t in active} == expected
                        and all(t["health"] == "up" for t in active))

            try:
                eventually(all_up, timeout=30, what="every component's target up", interval=0.5)
            except AssertionError:
                active = server.api("targets", state="active")["activeTargets"]
                raise AssertionError("targets: " + json.dumps(
                    [(t["labels"].get("pod"), t["scrapeUrl"], t["health"], t["lastError"]) for t in active],
                    indent=1)) from None
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_every_component_is_scraped_with_its_pod_labels(prometheus: Prometheus, vmi: dict) -> None:
    active = prometheus.api("targets", state="active")["activeTargets"]
    components = sorted(t["labels"]["component"] for t in active)
    assert components == sorted(name for name, count in EXPECTED_PODS.items() for _ in range(count))
    for target in active:
        labels = target["labels"]
        assert labels["namespace"] == NAMESPACE and labels["node"] == vmi["status"]["nodeName"], labels
        assert labels["pod"].startswith(labels["component"] + "-"), labels
        assert target["scrapeUrl"].startswith("https://"), target


def test_a_vmi_metric_through_the_http_api(prometheus: Prometheus, vmi: dict) -> None:
    result = eventually(lambda: prometheus.query(f'kubevirt_vmi_info{{namespace="default", name="{VMI}"}}'),
                        timeout=20, what="kubevirt_vmi_info of the VMI")
    series = {frozenset(r["metric"].items()) for r in result}
    assert len(series) == 1, result  # the leader alone reports it
    labels = result[0]["metric"]
    assert labels["phase"] == "running" and labels["node"] == vmi["status"]["nodeName"], labels
    assert float(result[0]["value"][1]) == 1
    # honor_labels kept the VMI's namespace (the query's "default", not the scraped pod's
    # "kubevirt"); the target still names the pod that reported it.
    assert labels["pod"].startswith("virt-controller-"), labels


def test_the_recording_rules_answer(prometheus: Prometheus, vmi: dict) -> None:
    def recorded(name: str) -> list[dict]:
        return prometheus.query(name)

    for name, count in (("kubevirt_virt_api_up", 2), ("kubevirt_virt_controller_up", 2),
                        ("kubevirt_virt_handler_up", 1), ("kubevirt_virt_controller_ready", 2),
                        ("kubevirt_virt_controller_leading", 1)):
        value = eventually(lambda n=name, c=count: _value(recorded(n)) == c and c, timeout=15,
                           what=f"{name} == {count} (last: {recorded(name)})")
        assert value == count
    phases = eventually(lambda: prometheus.query('kubevirt_vmi_phase_count{phase="running"}'), timeout=15,
                        what="kubevirt_vmi_phase_count of the running VMI")
    assert _value(phases) == 1 and phases[0]["metric"]["node"] == vmi["status"]["nodeName"]


def test_every_rule_evaluates_and_nothing_alerts_on_a_healthy_cluster(prometheus: Prometheus) -> None:
    def evaluated() -> list[dict] | None:
        found = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        return found if found and all(rule["health"] != "unknown" for rule in found) else None

    found = eventually(evaluated, timeout=15, what="every rule evaluated")
    broken = [(rule["name"], rule.get("lastError")) for rule in found if rule["health"] != "ok"]
    assert not broken
    # The first evaluation may come before the first scrape: no `up` yet reads as "every
    # component down" (pending, for its `for:` to run out). The next one clears that.
    def active() -> list[tuple[str, str, dict]]:
        return [(a["labels"]["alertname"], a["state"], a["labels"]) for a in prometheus.api("alerts")["alerts"]]

    try:
        eventually(lambda: not active(), timeout=10, what="no alert pending or firing", interval=0.5)
    except AssertionError:
        raise AssertionError(f"alerts on a healthy cluster: {active()}") from None


def test_every_dashboard_query_is_accepted(prometheus: Prometheus) -> None:
    for title, expr in dashboard_exprs(dashboard()):
        try:
            prometheus.query(as_sent_by_grafana(expr))
        except AssertionError as error:
            raise AssertionError(f"dashboard panel {title!r}: {error}") from None


def test_every_metric_the_rules_and_dashboard_read_is_exported(prometheus: Prometheus) -> None:
    """Read from the scraped metadata, which lists a family even while it has no sample
    (no migration running, no gRPC error yet)."""
    wanted = {name: uses for name, uses in referenced_families().items() if exported_by_us(name)}

    def missing() -> dict[str, list[str]]:
        metadata = prometheus.api("metadata")
        # Scraped as OpenMetrics (prometheus_client's answer to Prometheus' Accept header), a
        # counter's family is named without the _total its samples carry.
        known = set(metadata) | {f"{name}_total" for name, entries in metadata.items()
                                 if any(e["type"] == "counter" for e in entries)}
        return {name: sorted(uses) for name, uses in wanted.items() if name not in known}

    try:
        eventually(lambda: not missing(), timeout=10, what="metadata of every family")
    except AssertionError:
        raise AssertionError(f"not exported by any component: {json.dumps(missing(), indent=1)}") from None
