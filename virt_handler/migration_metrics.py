"""virt-handler's live-migration gauges, as upstream exports them
(pkg/monitoring/metrics/virt-handler/migrationdomainstats), labelled name, namespace and
node.

Read at scrape time from the launchers' last migration reports (``status.migration`` of
their domain events, libvirt's job statistics under ``progress``), for the migrations
that leave this node and have not completed: as upstream, a migration's series end once
the VMI's migrationState says completed (succeeded or failed), and the target node
reports nothing.

``kubevirt_vmi_migration_data_total_bytes`` is the name up to KubeVirt 1.7; 1.8 renamed
it ``kubevirt_vmi_migration_data_bytes_total`` (a counter) and keeps the old name only
as a recording rule. Without a PrometheusRule of ours, both are exported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

Obj = dict[str, Any]
LABELS = ("name", "namespace", "node")


@dataclass(frozen=True)
class _Series:
    metric: str
    progress_key: str  # the field of the launcher's report (virt_launcher.migration.progress_of)
    help: str
    counter: bool = False


SERIES = (
    _Series("kubevirt_vmi_migration_data_processed_bytes", "dataProcessedBytes",
            "The total Guest OS data processed and migrated to the new VM."),
    _Series("kubevirt_vmi_migration_data_remaining_bytes", "dataRemainingBytes",
            "The remaining guest OS data to be migrated to the new VM."),
    _Series("kubevirt_vmi_migration_data_total_bytes", "dataTotalBytes",
            "[Deprecated] The total Guest OS data to be migrated to the new VM; "
            "replaced by kubevirt_vmi_migration_data_bytes_total."),
    _Series("kubevirt_vmi_migration_data_bytes_total", "dataTotalBytes",
            "The total Guest OS data to be migrated to the new VM.", counter=True),
    _Series("kubevirt_vmi_migration_memory_transfer_rate_bytes", "memoryTransferRateBytesPerSecond",
            "The rate at which the memory is being transferred."),
    _Series("kubevirt_vmi_migration_dirty_memory_rate_bytes", "dirtyRateBytesPerSecond",
            "The rate of memory being dirty in the Guest OS."),
)


@dataclass(frozen=True)
class MigrationSample:
    name: str
    namespace: str
    node: str
    progress: Mapping[str, int]


def outgoing_migration(vmi: Obj, report: Obj, node_name: str) -> bool:
    """The report is of the VMI's current migration, which leaves this node and is not over."""
    state = (vmi.get("status") or {}).get("migrationState") or {}
    uid = state.get("migrationUid")
    return (bool(uid) and report.get("migrationUid") == uid and state.get("sourceNode") == node_name
            and not state.get("completed"))


def samples(node_name: str, reports: Mapping[str, Obj], vmi_of: Callable[[str], Obj | None]) -> list[MigrationSample]:
    found = []
    for key, report in sorted(reports.items()):
        vmi = vmi_of(key)
        if vmi is None or not outgoing_migration(vmi, report, node_name):
            continue
        meta = vmi["metadata"]
        progress = {k: int(v) for k, v in (report.get("progress") or {}).items() if isinstance(v, (int, float))}
        found.append(MigrationSample(meta["name"], meta.get("namespace", ""), node_name, progress))
    return found


def _family(series: _Series) -> GaugeMetricFamily | CounterMetricFamily:
    kind = CounterMetricFamily if series.counter else GaugeMetricFamily
    return kind(series.metric, series.help, labels=LABELS)


class MigrationStatsCollector:
    """``reports`` returns a snapshot (a copy) of the reports by VMI key; ``vmi_of`` looks a
    VMI up in the handler's cache. Both are called on the scraping thread."""

    def __init__(self, node_name: str, reports: Callable[[], Mapping[str, Obj]],
                 vmi_of: Callable[[str], Obj | None]) -> None:
        self._node_name = node_name
        self._reports = reports
        self._vmi_of = vmi_of

    def describe(self) -> Iterator[Metric]:
        # Names only, so the registry can refuse a duplicate without running a collection.
        return iter([_family(series) for series in SERIES])

    def collect(self) -> Iterator[Metric]:
        current = samples(self._node_name, self._reports(), self._vmi_of)
        for series in SERIES:
            family = _family(series)
            for sample in current:
                value = sample.progress.get(series.progress_key)
                if value is not None:  # libvirt leaves out what it does not know yet
                    family.add_metric([sample.name, sample.namespace, sample.node], value)
            yield family
