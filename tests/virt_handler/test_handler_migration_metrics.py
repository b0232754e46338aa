"""virt-handler's migration gauges: a launcher's migration report, as the Notify stream
delivers it, becomes upstream's kubevirt_vmi_migration_* series {name, namespace, node}
while the migration leaves this node, and nothing once it has completed, on the target
node, or for a previous migration's report."""

from __future__ import annotations

import json

from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubevirt_grpc.notify.v1 import notify_pb2
from virt_handler.migration_metrics import MigrationStatsCollector
from virt_handler.vmi_sync import VMISync

NODE = "node-a"
PROGRESS = {"dataTotalBytes": 1000, "dataProcessedBytes": 600, "dataRemainingBytes": 400,
            "memoryTransferRateBytesPerSecond": 250, "dirtyRateBytesPerSecond": 8192, "iteration": 2}
GAUGES = {
    "kubevirt_vmi_migration_data_processed_bytes": 600,
    "kubevirt_vmi_migration_data_remaining_bytes": 400,
    "kubevirt_vmi_migration_data_total_bytes": 1000,
    "kubevirt_vmi_migration_data_bytes_total": 1000,
    "kubevirt_vmi_migration_memory_transfer_rate_bytes": 250,
    "kubevirt_vmi_migration_dirty_memory_rate_bytes": 8192,
}


def _vmi(name: str, uid: str = "mig-1", source: str = NODE, **state) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"vmi-{name}"},
            "status": {"phase": "Running", "nodeName": source,
                       "migrationState": {"migrationUid": uid, "sourceNode": source, "targetNode": "node-b",
                                          **state}}}


def _report(uid: str = "mig-1", **progress) -> dict:
    return {"migrationUid": uid, "completed": False, "failed": False, "progress": {**PROGRESS, **progress}}


def _scrape(collector: MigrationStatsCollector) -> dict[str, list]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_an_outgoing_migration_is_reported_with_upstream_names_and_labels() -> None:
    vmis = {"default/moving": _vmi("moving")}
    collector = MigrationStatsCollector(NODE, lambda: {"default/moving": _report()}, vmis.get)
    scraped = _scrape(collector)
    labels = {"name": "moving", "namespace": "default", "node": NODE}
    for metric, value in GAUGES.items():
        assert scraped[metric] == [(labels, value)], metric


def test_types_are_gauges_and_the_renamed_total_a_counter() -> None:
    vmis = {"default/moving": _vmi("moving")}
    registry = CollectorRegistry()
    registry.register(MigrationStatsCollector(NODE, lambda: {"default/moving": _report()}, vmis.get))
    types = {f.name: f.type for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert types["kubevirt_vmi_migration_data_bytes"] == "counter"
    assert {types[name] for name in GAUGES if name != "kubevirt_vmi_migration_data_bytes_total"} == {"gauge"}


def test_only_migrations_in_progress_from_this_node_are_reported() -> None:
    vmis = {
        "default/done": _vmi("done", completed=True, endTimestamp="2030-01-01T00:00:00Z"),
        "default/failed": _vmi("failed", completed=True, failed=True),
        "default/incoming": _vmi("incoming", source="node-b"),
        "default/stale": _vmi("stale", uid="mig-2"),  # the report is of the migration before
        "default/moving": _vmi("moving"),
    }
    reports = {key: _report() for key in [*vmis, "default/deleted"]}
    scraped = _scrape(MigrationStatsCollector(NODE, lambda: reports, vmis.get))
    assert {labels["name"] for labels, _ in scraped["kubevirt_vmi_migration_data_remaining_bytes"]} == {"moving"}


def test_fields_libvirt_has_not_reported_yet_are_left_out() -> None:
    vmis = {"default/early": _vmi("early")}
    report = {"migrationUid": "mig-1", "progress": {"dataTotalBytes": 1000}}
    scraped = _scrape(MigrationStatsCollector(NODE, lambda: {"default/early": report}, vmis.get))
    assert scraped["kubevirt_vmi_migration_data_total_bytes"][0][1] == 1000
    assert "kubevirt_vmi_migration_data_remaining_bytes" not in scraped


def test_nothing_migrating_exposes_no_series() -> None:
    assert _scrape(MigrationStatsCollector(NODE, dict, lambda key: None)) == {}


def test_vmi_sync_hands_out_the_reports_of_its_notify_stream() -> None:
    sync = VMISync(client.ApiClient(), NODE, "/nonexistent")  # never started: no server is needed
    hello = notify_pb2.Hello(vmi_namespace="default", vmi_name="moving")
    domain = {"status": {"status": "Running", "migration": _report()}}
    sync._domain_event(hello, notify_pb2.DomainEvent(type=notify_pb2.DOMAIN_STATUS,
                                                     domain_json=json.dumps(domain).encode()))
    reports = sync.migration_reports()
    assert reports == {"default/moving": _report()}
    reports.clear()  # a snapshot: the scraper's copy, not the handler's map
    assert sync.migration_reports() == {"default/moving": _report()}

    vmis = {"default/moving": _vmi("moving")}
    scraped = _scrape(MigrationStatsCollector(NODE, sync.migration_reports, vmis.get))
    assert scraped["kubevirt_vmi_migration_data_processed_bytes"] == [
        ({"name": "moving", "namespace": "default", "node": NODE}, 600)]
