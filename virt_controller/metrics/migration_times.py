"""When each VMI's last migration started and ended, from ``vmi.status.migrationState`` as
the handlers wrote it: upstream's kubevirt_vmi_migration_start_time_seconds and
_end_time_seconds (pkg/monitoring/metrics/virt-controller/vmistats_collector.go),
labelled node (the VMI's node now), namespace, name, migration_name (the VMIM with the
state's migrationUid, "" once it is gone) and, for the end, status (succeeded, failed,
or "" while not completed). Values are Unix seconds.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from virt_controller.metrics.lister import Lister

Obj = dict[str, Any]

START_LABELS = ("node", "namespace", "name", "migration_name")
END_LABELS = (*START_LABELS, "status")


def epoch_seconds(stamp: Any) -> float | None:
    try:
        moment = datetime.datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)  # the API's timestamps are UTC
    return moment.timestamp()


def end_status(state: Obj) -> str:
    if not state.get("completed"):
        return ""
    return "failed" if state.get("failed") else "succeeded"


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    return (GaugeMetricFamily("kubevirt_vmi_migration_start_time_seconds",
                              "The time at which the migration started.", labels=START_LABELS),
            GaugeMetricFamily("kubevirt_vmi_migration_end_time_seconds",
                              "The time at which the migration ended.", labels=END_LABELS))


class MigrationTimesCollector:
    def __init__(self, vmis: Lister, migrations: Lister) -> None:
        self._vmis = vmis
        self._migrations = migrations

    def describe(self) -> Iterator[Metric]:
        return iter(_families())

    def collect(self) -> Iterator[Metric]:
        start, end = _families()
        names = {str(m["metadata"].get("uid")): str(m["metadata"].get("name") or "") for m in self._migrations.list()}
        for vmi in self._vmis.list():
            status = vmi.get("status") or {}
            state = status.get("migrationState") or {}
            if not state:
                continue
            meta = vmi["metadata"]
            labels = [str(status.get("nodeName") or ""), str(meta.get("namespace") or ""), str(meta.get("name")),
                      names.get(str(state.get("migrationUid")), "")]
            if (started := epoch_seconds(state.get("startTimestamp"))) is not None:
                start.add_metric(labels, started)
            if (ended := epoch_seconds(state.get("endTimestamp"))) is not None:
                end.add_metric([*labels, end_status(state)], ended)
        return iter([start, end])
