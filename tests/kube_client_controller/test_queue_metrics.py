"""client-go's work queue metrics: they move as a real Controller works through keys
(adds counted once per wake-up, retries per back-off, both durations observed), the
in-progress gauges see a reconcile that hangs, and a queue instrumented late does not
report a negative depth."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from kube_client.controller.controller import Controller
from kube_client.controller.queue_metrics import WorkqueueMetrics
from kube_client.controller.ratelimit import ItemExponentialBackoff
from kube_client.controller.workqueue import WorkQueue

from .helpers import wait_until


def _registry(metrics: WorkqueueMetrics) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(metrics)
    return registry


def _value(registry: CollectorRegistry, name: str, queue: str) -> float | None:
    return registry.get_sample_value(f"kubevirt_workqueue_{name}", {"name": queue})


def test_metrics_move_as_a_controller_reconciles() -> None:
    failures = {"ns/flaky": 2}
    reconciled: list[str] = []

    def reconcile(key: str) -> None:
        if failures.get(key, 0) > 0:
            failures[key] -= 1
            raise RuntimeError("not yet")
        reconciled.append(key)

    controller = Controller("toy", reconcile, rate_limiter=ItemExponentialBackoff(base=0.01, maximum=1))
    metrics = WorkqueueMetrics("kubevirt")
    metrics.instrument(controller.name, controller.queue)
    registry = _registry(metrics)
    controller.start()
    try:
        for key in ("ns/a", "ns/b", "ns/flaky"):
            controller.enqueue(key)
        assert wait_until(lambda: sorted(reconciled) == ["ns/a", "ns/b", "ns/flaky"], timeout=5)
        assert wait_until(lambda: _value(registry, "work_duration_seconds_count", "toy") == 5)
    finally:
        assert controller.stop()
    # Three keys, the flaky one back twice after failing: five wake-ups, two retries.
    assert _value(registry, "adds_total", "toy") == 5
    assert _value(registry, "retries_total", "toy") == 2
    assert _value(registry, "queue_duration_seconds_count", "toy") == 5
    assert _value(registry, "depth", "toy") == 0
    assert _value(registry, "unfinished_work_seconds", "toy") == 0
    assert _value(registry, "longest_running_processor_seconds", "toy") == 0


def test_a_hanging_reconcile_shows_as_unfinished_work() -> None:
    release = threading.Event()
    started = threading.Event()

    def reconcile(key: str) -> None:
        started.set()
        release.wait(10)

    controller = Controller("stuck", reconcile)
    metrics = WorkqueueMetrics("kubevirt")
    metrics.instrument(controller.name, controller.queue)
    registry = _registry(metrics)
    controller.start()
    try:
        controller.enqueue("ns/slow")
        assert started.wait(5)
        controller.enqueue("ns/waiting")  # the only worker is busy: this one waits
        assert wait_until(lambda: (_value(registry, "longest_running_processor_seconds", "stuck") or 0) > 0.05)
        scraped = {sample.name: sample.value for family in registry.collect() for sample in family.samples}
        # One key in progress: its age is both the sum and the oldest.
        assert scraped["kubevirt_workqueue_unfinished_work_seconds"] == \
            scraped["kubevirt_workqueue_longest_running_processor_seconds"]
        assert _value(registry, "depth", "stuck") == 1
        assert _value(registry, "work_duration_seconds_count", "stuck") == 0
    finally:
        release.set()
        assert controller.stop()


def test_adding_a_waiting_key_again_is_not_another_add() -> None:
    queue = WorkQueue()
    metrics = WorkqueueMetrics()  # no namespace: client-go's own names
    metrics.instrument("plain", queue)
    registry = _registry(metrics)
    for _ in range(3):
        queue.add("ns/a")
    assert registry.get_sample_value("workqueue_adds_total", {"name": "plain"}) == 1
    assert registry.get_sample_value("workqueue_depth", {"name": "plain"}) == 1
    key, _ = queue.get()
    queue.add("ns/a")  # changed while held: one more wake-up, handed out after done()
    assert registry.get_sample_value("workqueue_adds_total", {"name": "plain"}) == 2
    assert registry.get_sample_value("workqueue_depth", {"name": "plain"}) == 1
    queue.done(key)
    assert queue.get(timeout=1) == ("ns/a", False)
    assert registry.get_sample_value("workqueue_depth", {"name": "plain"}) == 0
    assert registry.get_sample_value("workqueue_work_duration_seconds_count", {"name": "plain"}) == 1


def test_a_queue_instrumented_late_counts_what_already_waits() -> None:
    queue = WorkQueue()
    queue.add("ns/a")
    queue.add("ns/b")
    held, _ = queue.get()
    metrics = WorkqueueMetrics("kubevirt")
    metrics.instrument("late", queue)
    registry = _registry(metrics)
    assert _value(registry, "depth", "late") == 1
    queue.done(held)  # handed out before: no work duration to observe
    assert queue.get(timeout=1)[0] == "ns/b"
    assert _value(registry, "depth", "late") == 0
    assert _value(registry, "work_duration_seconds_count", "late") == 0
    assert _value(registry, "queue_duration_seconds_count", "late") == 1


def test_every_family_is_exported_with_upstream_names() -> None:
    metrics = WorkqueueMetrics("kubevirt")
    metrics.instrument("vmi", WorkQueue())
    names = {family.name for family in _registry(metrics).collect()}
    assert names == {"kubevirt_workqueue_adds", "kubevirt_workqueue_retries", "kubevirt_workqueue_depth",
                     "kubevirt_workqueue_queue_duration_seconds", "kubevirt_workqueue_work_duration_seconds",
                     "kubevirt_workqueue_unfinished_work_seconds",
                     "kubevirt_workqueue_longest_running_processor_seconds"}
