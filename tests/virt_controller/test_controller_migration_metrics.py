"""virt-controller's migration metrics against the real API server: the in-phase gauges
and succeeded/failed series counted from the migration informer's cache, start and end
times from the VMIs' migrationState, the phase-transition histogram fed by the
informer's updates, and nothing at all from a replica that does not lead."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kube_client.controller import SharedInformer
from kube_client.timestamps import format_time
from tests.informers import synced
from tests.wait import eventually
from virt_controller.metrics import register_migration_metrics
from virt_controller.migration_controller import MIGRATIONS, VMIS

NS = "default"
VMI = ("kubevirt.io", "v1", NS, "virtualmachineinstances")
VMIM = ("kubevirt.io", "v1", NS, "virtualmachineinstancemigrations")


class _Leadership:
    def __init__(self) -> None:
        self.leading = True

    def is_leader(self) -> bool:
        return self.leading


@pytest.fixture(scope="module")
def informers(kubevirt_api) -> Iterator[tuple[SharedInformer, SharedInformer]]:
    migrations = SharedInformer(kubevirt_api, MIGRATIONS, name="metrics-test-migrations")
    vmis = SharedInformer(kubevirt_api, VMIS, name="metrics-test-vmis")
    with synced(migrations, vmis):
        yield migrations, vmis


@pytest.fixture(scope="module")
def metrics(informers) -> tuple[CollectorRegistry, _Leadership]:
    registry, leadership = CollectorRegistry(), _Leadership()
    register_migration_metrics(registry, *informers, leadership.is_leader)
    return registry, leadership


def _custom(api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _migration(api, vmi: str, phase: str | None = None) -> dict:
    created = _custom(api).create_namespaced_custom_object(*VMIM[:3], VMIM[3], {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": f"mig-{uuid.uuid4().hex[:6]}"}, "spec": {"vmiName": vmi}})
    if phase is None:
        return created
    return _custom(api).patch_namespaced_custom_object_status(*VMIM, created["metadata"]["name"],
                                                             {"status": {"phase": phase}})


def _scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict, float]]]:
    found: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _value(scraped: dict, metric: str, **labels: str) -> float | None:
    return next((v for found, v in scraped.get(metric, []) if all(found.get(k) == x for k, x in labels.items())),
                None)


def test_phase_counts_and_results_follow_the_cache(kubevirt_api, informers, metrics) -> None:
    registry, _ = metrics
    migrations, _ = informers
    phases = [None, "Pending", "Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running",
              "Succeeded", "Failed"]
    made = [_migration(kubevirt_api, f"vmi-{i}", phase) for i, phase in enumerate(phases)]
    eventually(lambda: all((migrations.get(f"{NS}/{m['metadata']['name']}") or {}).get("metadata", {})
                           .get("resourceVersion") == m["metadata"]["resourceVersion"] for m in made),
               what="the informer caught up")

    scraped = _scrape(registry)
    assert _value(scraped, "kubevirt_vmi_migrations_in_unset_phase") == 1
    assert _value(scraped, "kubevirt_vmi_migrations_in_pending_phase") == 2
    assert _value(scraped, "kubevirt_vmi_migrations_in_scheduling_phase") == 1
    assert _value(scraped, "kubevirt_vmi_migrations_in_running_phase") == 4
    succeeded, failed = made[8]["metadata"]["name"], made[9]["metadata"]["name"]
    assert scraped["kubevirt_vmi_migration_succeeded"] == [({"vmi": "vmi-8", "vmim": succeeded, "namespace": NS}, 1)]
    assert scraped["kubevirt_vmi_migration_failed"] == [({"vmi": "vmi-9", "vmim": failed, "namespace": NS}, 1)]

    # Computed from the cache at each scrape: a deleted migration no longer counts.
    for migration in made:
        _custom(kubevirt_api).delete_namespaced_custom_object(*VMIM, migration["metadata"]["name"])
    eventually(lambda: not migrations.list(), what="the informer saw the deletions")
    scraped = _scrape(registry)
    assert _value(scraped, "kubevirt_vmi_migrations_in_pending_phase") == 0
    assert _value(scraped, "kubevirt_vmi_migrations_in_running_phase") == 0
    assert "kubevirt_vmi_migration_succeeded" not in scraped


def test_start_and_end_times_come_from_the_vmi_migration_state(kubevirt_api, informers, metrics) -> None:
    registry, _ = metrics
    migrations, vmis = informers
    name = f"vmi-{uuid.uuid4().hex[:6]}"
    migration = _migration(kubevirt_api, name, "Succeeded")
    vmi = _custom(kubevirt_api).create_namespaced_custom_object(*VMI[:3], VMI[3], {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": name},
        "spec": {"domain": {"devices": {}}}})
    start = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    end = start + datetime.timedelta(seconds=7)
    vmi = _custom(kubevirt_api).patch_namespaced_custom_object_status(*VMI, name, {"status": {
        "phase": "Running", "nodeName": "node-b", "migrationState": {
            "migrationUid": migration["metadata"]["uid"], "sourceNode": "node-a", "targetNode": "node-b",
            "startTimestamp": format_time(start), "endTimestamp": format_time(end), "completed": True}}})
    eventually(lambda: ((vmis.get(f"{NS}/{name}") or {}).get("metadata", {}).get("resourceVersion")
                        == vmi["metadata"]["resourceVersion"]) and migrations.get(f"{NS}/{migration['metadata']['name']}"),
               what="the informers caught up")

    scraped = _scrape(registry)
    labels = {"node": "node-b", "namespace": NS, "name": name, "migration_name": migration["metadata"]["name"]}
    assert _value(scraped, "kubevirt_vmi_migration_start_time_seconds", **labels) == start.timestamp()
    assert _value(scraped, "kubevirt_vmi_migration_end_time_seconds", **labels, status="succeeded") == end.timestamp()

    _custom(kubevirt_api).delete_namespaced_custom_object(*VMIM, migration["metadata"]["name"])
    _custom(kubevirt_api).delete_namespaced_custom_object(*VMI, name)
    eventually(lambda: vmis.get(f"{NS}/{name}") is None, what="the VMI left the cache")


def test_phase_transitions_are_observed_from_creation(kubevirt_api, informers, metrics) -> None:
    registry, _ = metrics
    migration = _migration(kubevirt_api, "vmi-transitions")
    created = datetime.datetime.fromisoformat(migration["metadata"]["creationTimestamp"])
    _custom(kubevirt_api).patch_namespaced_custom_object_status(*VMIM, migration["metadata"]["name"], {"status": {
        "phase": "Pending", "phaseTransitionTimestamps": [
            {"phase": "Pending", "phaseTransitionTimestamp": format_time(created + datetime.timedelta(seconds=3))}]}})
    histogram = "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds"

    def observed() -> dict | None:
        scraped = _scrape(registry)
        return scraped if _value(scraped, f"{histogram}_count", phase="Pending") else None

    scraped = eventually(observed, what="the transition observed")
    assert _value(scraped, f"{histogram}_count", phase="Pending") == 1
    assert _value(scraped, f"{histogram}_sum", phase="Pending") == 3
    assert _value(scraped, f"{histogram}_bucket", phase="Pending", le="2.0") == 0
    assert _value(scraped, f"{histogram}_bucket", phase="Pending", le="5.0") == 1
    _custom(kubevirt_api).delete_namespaced_custom_object(*VMIM, migration["metadata"]["name"])


def test_a_replica_that_does_not_lead_reports_no_migrations(kubevirt_api, informers, metrics) -> None:
    registry, leadership = metrics
    migrations, _ = informers
    histogram = "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds_count"
    migration = _migration(kubevirt_api, "vmi-follower", "Pending")
    eventually(lambda: migrations.get(f"{NS}/{migration['metadata']['name']}"), what="the informer saw it")
    observed_before = _value(_scrape(registry), histogram, phase="Scheduling")
    leadership.leading = False
    try:
        scraped = _scrape(registry)
        # What it observed while it led stays in its histogram; nothing else is reported.
        assert not [name for name in scraped if name.startswith("kubevirt_vmi_migration")
                    and not name.startswith("kubevirt_vmi_migration_phase_transition_time_from_creation_seconds")]
        # A transition seen meanwhile is left to the leader.
        _custom(kubevirt_api).patch_namespaced_custom_object_status(*VMIM, migration["metadata"]["name"], {
            "status": {"phase": "Scheduling", "phaseTransitionTimestamps": [
                {"phase": "Scheduling", "phaseTransitionTimestamp": migration["metadata"]["creationTimestamp"]}]}})
        eventually(lambda: ((migrations.get(f"{NS}/{migration['metadata']['name']}") or {}).get("status") or {})
                   .get("phase") == "Scheduling", what="the informer saw the transition")
    finally:
        leadership.leading = True
    scraped = _scrape(registry)
    assert _value(scraped, "kubevirt_vmi_migrations_in_scheduling_phase") == 1
    assert _value(scraped, histogram, phase="Scheduling") == observed_before
    _custom(kubevirt_api).delete_namespaced_custom_object(*VMIM, migration["metadata"]["name"])
    eventually(lambda: migrations.get(f"{NS}/{migration['metadata']['name']}") is None, what="deleted")
