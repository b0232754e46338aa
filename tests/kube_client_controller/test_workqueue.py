"""The work queue and its rate limiters: dedupe, one holder per key, delays, back-off, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from kube_client.controller.ratelimit import ItemExponentialBackoff, MaxOf, TokenBucket, default_rate_limiter
from kube_client.controller.workqueue import WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_add_dedupes_while_queued_and_keeps_order() -> None:
    queue = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(0)[0] for _ in range(3)] == ["a", "b", "c"]
    assert queue.get(0) == (None, False)


def test_a_held_key_is_not_handed_out_again_until_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    assert queue.get(0) == ("a", False)
    # Changed while a worker holds it: a second worker must not get it...
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0
    assert queue.get(0.05) == (None, False)
    # ...but it is not lost: done() queues it again, once.
    queue.done("a")
    assert len(queue) == 1
    assert queue.get(0) == ("a", False)
    queue.done("a")
    assert len(queue) == 0


def test_done_without_a_readd_drops_the_key() -> None:
    queue = WorkQueue()
    queue.add("a")
    key, _ = queue.get(0)
    queue.done(key)
    assert len(queue) == 0
    queue.add("a")
    assert queue.get(0) == ("a", False)


def test_add_after_hands_keys_out_in_due_order() -> None:
    queue = WorkQueue()
    started = time.monotonic()
    queue.add_after("late", 0.25)
    queue.add_after("early", 0.1)
    queue.add_after("now", 0)
    assert queue.get(0) == ("now", False)
    assert queue.get(0) == (None, False)
    assert queue.waiting() == 2
    assert queue.get(1) == ("early", False)
    assert time.monotonic() - started >= 0.1
    assert queue.get(1) == ("late", False)
    assert time.monotonic() - started >= 0.25


def test_add_after_keeps_the_earliest_time_for_a_key() -> None:
    queue = WorkQueue()
    queue.add_after("a", 0.05)
    queue.add_after("a", 10)
    queue.add_after("b", 0.1)
    assert queue.waiting() == 2
    assert queue.get(1) == ("a", False)
    assert queue.get(1) == ("b", False)
    assert queue.waiting() == 0


def test_a_sleeping_getter_notices_an_earlier_delayed_key() -> None:
    queue = WorkQueue()
    queue.add_after("slow", 5)
    got: list[tuple[str | None, bool]] = []
    getter = threading.Thread(target=lambda: got.append(queue.get(3)))
    getter.start()
    time.sleep(0.05)
    started = time.monotonic()
    queue.add_after("quick", 0.05)
    getter.join(2)
    assert got == [("quick", False)]
    assert time.monotonic() - started < 1.0


def test_exponential_backoff_grows_caps_and_forgets() -> None:
    backoff = ItemExponentialBackoff(base=0.005, maximum=1000.0)
    delays = [backoff.when("a") for _ in range(5)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert backoff.num_requeues("a") == 5
    assert backoff.when("b") == pytest.approx(0.005)  # per key
    for _ in range(40):
        backoff.when("a")
    assert backoff.when("a") == 1000.0
    backoff.forget("a")
    assert backoff.num_requeues("a") == 0
    assert backoff.when("a") == pytest.approx(0.005)
    for _ in range(5000):  # no overflow however long a key keeps failing
        backoff.when("c")
    assert backoff.when("c") == 1000.0


def test_token_bucket_allows_a_burst_then_paces_at_qps() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=3, clock=clock)
    assert [bucket.when(str(i)) for i in range(3)] == [0.0, 0.0, 0.0]
    # Each further retry reserves the next token: 0.1 s apart.
    assert [bucket.when(str(i)) for i in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    clock.now += 10  # refills, but never above the burst
    assert [bucket.when(str(i)) for i in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_combined_limiter_takes_the_longer_wait() -> None:
    clock = FakeClock()
    limiter = MaxOf(ItemExponentialBackoff(base=0.001, maximum=0.004), TokenBucket(qps=100, burst=2, clock=clock))
    assert limiter.when("a") == pytest.approx(0.001)  # back-off longer than a free token
    assert limiter.when("a") == pytest.approx(0.002)
    assert limiter.when("a") == pytest.approx(0.01)  # the bucket is empty: pacing wins
    assert limiter.num_requeues("a") == 3
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


def test_default_limiter_numbers() -> None:
    limiter = default_rate_limiter()
    assert [limiter.when("k") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])


def test_add_rate_limited_delays_with_back_off_and_forget_resets_it() -> None:
    queue = WorkQueue(ItemExponentialBackoff(base=0.05, maximum=10))
    queue.add_rate_limited("a")
    assert queue.num_requeues("a") == 1
    assert queue.get(0) == (None, False)
    started = time.monotonic()
    assert queue.get(1) == ("a", False)
    first = time.monotonic() - started
    queue.done("a")
    queue.add_rate_limited("a")
    started = time.monotonic()
    assert queue.get(1) == ("a", False)
    second = time.monotonic() - started
    queue.done("a")
    assert 0.03 <= first < second
    assert second >= 0.09
    queue.forget("a")
    assert queue.num_requeues("a") == 0


def test_shut_down_wakes_every_getter_and_refuses_new_keys() -> None:
    queue = WorkQueue()
    results: list[tuple[str | None, bool]] = []
    getters = [threading.Thread(target=lambda: results.append(queue.get())) for _ in range(4)]
    for getter in getters:
        getter.start()
    time.sleep(0.05)
    started = time.monotonic()
    queue.shut_down()
    for getter in getters:
        getter.join(1)
    assert not any(getter.is_alive() for getter in getters)
    assert time.monotonic() - started < 0.5
    assert results == [(None, True)] * 4
    queue.add("a")
    queue.add_after("b", 0.01)
    assert queue.shutting_down
    assert queue.get(0) == (None, True)


def test_get_times_out() -> None:
    queue = WorkQueue()
    started = time.monotonic()
    assert queue.get(0.1) == (None, False)
    assert 0.09 <= time.monotonic() - started < 1.0


def test_concurrent_workers_never_share_a_key_and_miss_no_change() -> None:
    queue = WorkQueue()
    keys = [f"k{i}" for i in range(20)]
    lock = threading.Lock()
    held: set[str] = set()
    overlaps: list[str] = []
    # Per key: the last change made, and the last change a worker saw when it started.
    changed: dict[str, int] = dict.fromkeys(keys, 0)
    seen: dict[str, int] = dict.fromkeys(keys, -1)

    def work() -> None:
        while True:
            key, shutdown = queue.get()
            if shutdown:
                return
            with lock:
                if key in held:
                    overlaps.append(key)
                held.add(key)
                seen[key] = changed[key]
            time.sleep(0.0005)
            with lock:
                held.discard(key)
            queue.done(key)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for round_ in range(1, 200):
        key = keys[round_ % len(keys)]
        with lock:
            changed[key] = round_
        queue.add(key)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                if seen == changed:
                    break
            time.sleep(0.01)
    finally:
        queue.shut_down()
        for worker in workers:
            worker.join(2)
    assert not overlaps
    assert seen == changed
