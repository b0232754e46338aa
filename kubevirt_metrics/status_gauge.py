"""A gauge that is 1 while something about the component holds and 0 while it does not,
read at scrape time: upstream's kubevirt_virt_*_ready_status and _leading_status.

Asked at every scrape rather than set on transitions, so the gauge can never disagree with
the state it reports (a lost lease, a cache that has not synced yet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric


class StatusGauge:
    def __init__(self, name: str, help: str, holds: Callable[[], bool]) -> None:
        self._name = name
        self._help = help
        self._holds = holds

    def describe(self) -> Iterator[Metric]:
        return iter([GaugeMetricFamily(self._name, self._help)])

    def collect(self) -> Iterator[Metric]:
        return iter([GaugeMetricFamily(self._name, self._help, value=1 if self._holds() else 0)])
