"""Domain event -> VMI status latency: measured from the oldest event a status write
reflects, with an event that arrives during the write left for the next one."""

from __future__ import annotations

import time

from virt_handler.event_latency import METRIC, EventToStatusLatency


def _samples(latency: EventToStatusLatency) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value for m in latency.collect() for s in m.samples}


def test_the_oldest_pending_event_is_measured_once_per_write() -> None:
    latency = EventToStatusLatency()
    now = time.time_ns()
    latency.event("default/a", now - 40_000_000)   # 40 ms ago
    latency.event("default/a", now - 1_000_000)    # reflected by the same write
    latency.reflected(latency.take("default/a"))
    latency.reflected(latency.take("default/a"))   # nothing pending: nothing observed
    samples = _samples(latency)
    assert samples[(f"{METRIC}_count", "")] == 1
    assert samples[(f"{METRIC}_bucket", "0.03")] == 0 and samples[(f"{METRIC}_bucket", "0.05")] == 1


def test_a_failed_write_gives_the_stamp_back_and_unstamped_events_are_not_measured() -> None:
    latency = EventToStatusLatency()
    now = time.time_ns()
    latency.event("default/a", now - 5_000_000)
    stamp = latency.take("default/a")
    latency.event("default/a", now)            # arrived while the failing write ran
    latency.give_back("default/a", stamp)      # the older stamp is pending again
    assert latency.take("default/a") == stamp
    latency.event("default/b", 0)              # a launcher that does not stamp its events
    assert latency.take("default/b") is None
    assert _samples(latency)[(f"{METRIC}_count", "")] == 0
