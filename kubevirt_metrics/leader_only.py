"""A collector that reports only while its replica leads.

Cluster-wide figures (how many migrations are pending, ...) are exported by the leader
alone, as upstream's virt-controller does: its non-leaders have no caches to count
from, and a replica that led once keeps its caches, so were each to report the same
counts, a ``sum()`` over the scraped pods would count every migration once per replica.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import Metric
from prometheus_client.registry import Collector


class LeaderOnly:
    def __init__(self, collector: Collector, is_leader: Callable[[], bool]) -> None:
        self._collector = collector
        self._is_leader = is_leader

    def describe(self) -> Iterable[Metric]:
        # The registry checks names for clashes through describe; asking collect instead
        # would find none on a replica that does not lead yet.
        describe = getattr(self._collector, "describe", None)
        return describe() if describe is not None else ()

    def collect(self) -> Iterable[Metric]:
        return self._collector.collect() if self._is_leader() else ()
