"""client-go's work queue metrics for our WorkQueues, as a prometheus_client collector.

The families and their meaning are client-go's (k8s.io/client-go/util/workqueue), each
with the label ``name`` (the controller's name); ``namespace`` prefixes them, so
KubeVirt's components pass "kubevirt" and export ``kubevirt_workqueue_adds_total`` and
friends, as upstream's components do:

    <ns>_workqueue_adds_total                             counter    keys that came to need a reconcile
    <ns>_workqueue_retries_total                          counter    add_after / add_rate_limited calls
    <ns>_workqueue_depth                                  gauge      keys waiting for a worker
    <ns>_workqueue_queue_duration_seconds                 histogram  wait from added to handed out
    <ns>_workqueue_work_duration_seconds                  histogram  handed out to done()
    <ns>_workqueue_unfinished_work_seconds                gauge      summed age of the keys in progress
    <ns>_workqueue_longest_running_processor_seconds     gauge      age of the oldest key in progress

kube_client knows nothing of any registry: a WorkqueueMetrics is a collector that the
component registers in its own (kubevirt_metrics.component_registry()). The cost is a
few counter increments under the queue's own lock, about 2 us per key from add to done
(bench/workqueue.py), against the milliseconds of a reconcile's API calls; the gauges are
computed when scraped, rather than refreshed by a thread as client-go does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from kube_client.controller.workqueue import WorkQueue

# client-go's buckets: 10ns to 10s, a decade each.
DURATION_BUCKETS = tuple(1e-8 * 10 ** exponent for exponent in range(10))


class _QueueRecorder:
    """One queue's bookkeeping. Mutated only under the queue's lock (see QueueMetrics)."""

    def __init__(self, adds: Counter, retries: Counter, waited: Histogram, worked: Histogram) -> None:
        self._adds = adds
        self._retries = retries
        self._waited = waited
        self._worked = worked
        self._lock: threading.Condition | None = None
        self._depth = 0
        self._added_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}

    def attach(self, lock: threading.Condition) -> None:
        self._lock = lock

    def added(self, key: str) -> None:
        self._adds.inc()
        self._depth += 1
        # A key changed while in progress keeps its first time: its wait includes the
        # rest of that reconcile, as client-go's does.
        self._added_at.setdefault(key, time.monotonic())

    def handed_out(self, key: str) -> None:
        now = time.monotonic()
        self._depth -= 1
        added = self._added_at.pop(key, None)
        if added is not None:
            self._waited.observe(now - added)
        self._started_at[key] = now

    def finished(self, key: str) -> None:
        started = self._started_at.pop(key, None)
        if started is not None:
            self._worked.observe(time.monotonic() - started)

    def retried(self) -> None:
        self._retries.inc()

    def gauges(self) -> tuple[int, float, float]:
        """(depth, unfinished work seconds, longest running seconds), read consistently."""
        lock = self._lock
        if lock is None:
            return 0, 0.0, 0.0
        with lock:
            depth, started = self._depth, list(self._started_at.values())
        now = time.monotonic()
        ages = [now - at for at in started]
        return depth, sum(ages), max(ages, default=0.0)


class WorkqueueMetrics:
    """A collector of the work queues given to instrument(); register it in a registry."""

    def __init__(self, namespace: str = "") -> None:
        self._prefix = f"{namespace}_" if namespace else ""
        # Not registered anywhere: collect() below hands them to whichever registry holds us.
        self._adds = Counter("workqueue_adds", "Keys that came to need a reconcile (adding a key already "
                             "waiting does not count).", ["name"], namespace=namespace, registry=None)
        self._retries = Counter("workqueue_retries", "Keys put back to be looked at again after a delay "
                                "(failed reconciles and requeues).", ["name"], namespace=namespace, registry=None)
        self._waited = Histogram("workqueue_queue_duration_seconds",
                                 "Seconds a key waited in the queue before a worker took it.",
                                 ["name"], namespace=namespace, registry=None, buckets=DURATION_BUCKETS)
        self._worked = Histogram("workqueue_work_duration_seconds",
                                 "Seconds a worker spent on a key, from taking it to done.",
                                 ["name"], namespace=namespace, registry=None, buckets=DURATION_BUCKETS)
        self._lock = threading.Lock()
        self._queues: dict[str, _QueueRecorder] = {}

    def instrument(self, name: str, queue: WorkQueue) -> None:
        """Export ``queue`` under ``name``. A later queue of the same name (a controller
        made anew after a stop) takes over the gauges; the counters carry on."""
        recorder = _QueueRecorder(self._adds.labels(name), self._retries.labels(name),
                                  self._waited.labels(name), self._worked.labels(name))
        queue.instrument(recorder)
        with self._lock:
            self._queues[name] = recorder

    def describe(self) -> Iterable[Metric]:
        return [*self._adds.describe(), *self._retries.describe(), *self._waited.describe(),
                *self._worked.describe(), *self._gauge_families()]

    def collect(self) -> Iterator[Metric]:
        for metric in (self._adds, self._retries, self._waited, self._worked):
            yield from metric.collect()
        depth, unfinished, longest = self._gauge_families()
        with self._lock:
            queues = list(self._queues.items())
        for name, recorder in queues:
            queued, in_progress, oldest = recorder.gauges()
            depth.add_metric([name], queued)
            unfinished.add_metric([name], in_progress)
            longest.add_metric([name], oldest)
        yield from (depth, unfinished, longest)

    def _gauge_families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        prefix = self._prefix
        return (
            GaugeMetricFamily(f"{prefix}workqueue_depth", "Keys waiting for a worker.", labels=["name"]),
            GaugeMetricFamily(f"{prefix}workqueue_unfinished_work_seconds",
                              "Summed age in seconds of the keys being worked on now (not yet in "
                              "work_duration); growing at rate N means N workers are stuck.",
                              labels=["name"]),
            GaugeMetricFamily(f"{prefix}workqueue_longest_running_processor_seconds",
                              "Age in seconds of the oldest key being worked on now.",
                              labels=["name"]),
        )
