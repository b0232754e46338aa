"""Lease leader election between two electors against the real API server.

Durations are short (2 s lease, 1.2 s renew deadline, 0.2 s retry) so expiry is seen
in seconds; a sampler reads both electors' is_leader() every millisecond throughout
and any instant at which both claim to lead fails the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from kubernetes import client

from kube_client.controller.leader import LeaderElector
from kube_client.rawapi import call

from .helpers import wait_until

LEASE = "virt-controller"
TIMINGS = {"lease_duration": 2.0, "renew_deadline": 1.2, "retry_period": 0.2}


class Sampler:
    """Reads every elector's is_leader() in a tight loop, counting overlaps."""

    def __init__(self, electors: list[LeaderElector]) -> None:
        self._electors = electors
        self._stop = threading.Event()
        self.samples = 0
        self.overlaps = 0
        self._thread = threading.Thread(target=self._run, name="leader-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            if sum(elector.is_leader() for elector in self._electors) > 1:
                self.overlaps += 1
            self.samples += 1
            time.sleep(0.001)

    @contextmanager
    def running(self) -> Iterator["Sampler"]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(2)


class Calls:
    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    def on_started(self) -> None:
        self.started += 1

    def on_stopped(self) -> None:
        self.stopped += 1


def _elector(api: client.ApiClient, namespace: str, identity: str, calls: Calls) -> LeaderElector:
    return LeaderElector(api, namespace, LEASE, identity, on_started_leading=calls.on_started,
                         on_stopped_leading=calls.on_stopped, **TIMINGS)


def _lease(api: client.ApiClient, namespace: str) -> dict:
    return call(client.CoordinationV1Api(api).read_namespaced_lease, LEASE, namespace)


def _refuse(*args: object, **kwargs: object) -> None:
    raise ConnectionRefusedError("partitioned from the API server")


def _leader(electors: list[LeaderElector]) -> LeaderElector | None:
    leading = [elector for elector in electors if elector.is_leader()]
    return leading[0] if len(leading) == 1 else None


@pytest.fixture
def pair(api: client.ApiClient, namespace: str) -> Iterator[tuple[list[LeaderElector], list[Calls]]]:
    calls = [Calls(), Calls()]
    electors = [_elector(api, namespace, "alpha", calls[0]), _elector(api, namespace, "beta", calls[1])]
    for elector in electors:
        elector.start()
    try:
        yield electors, calls
    finally:
        for elector in electors:
            assert elector.stop(timeout=3)


def test_one_leads_and_a_release_hands_over_at_once(api: client.ApiClient, namespace: str, pair) -> None:
    electors, calls = pair
    with Sampler(electors).running() as sampler:
        assert wait_until(lambda: _leader(electors) is not None, timeout=5)
        first = _leader(electors)
        assert first is not None
        other = electors[1 - electors.index(first)]
        # Several renewals pass; leadership stays put.
        time.sleep(3 * TIMINGS["retry_period"])
        assert first.is_leader() and not other.is_leader()

        lease = _lease(api, namespace)["spec"]
        assert lease["holderIdentity"] == first.identity
        assert lease["leaseDurationSeconds"] == 2
        assert lease["leaseTransitions"] == 0
        acquired = datetime.fromisoformat(lease["acquireTime"])
        assert datetime.fromisoformat(lease["renewTime"]) > acquired
        assert other.holder() == first.identity

        started = time.monotonic()
        assert first.stop()
        assert not first.is_leader()
        assert wait_until(other.is_leader, timeout=3)
        handover = time.monotonic() - started
    assert sampler.overlaps == 0 and sampler.samples > 500
    # The successor took a released lease at its next retry, not after expiry.
    assert handover < TIMINGS["lease_duration"] * 0.75
    lease = _lease(api, namespace)["spec"]
    assert lease["holderIdentity"] == other.identity
    assert lease["leaseTransitions"] == 1
    assert datetime.fromisoformat(lease["acquireTime"]) > acquired
    first_calls, other_calls = calls[electors.index(first)], calls[electors.index(other)]
    assert (first_calls.started, first_calls.stopped) == (1, 1)
    assert (other_calls.started, other_calls.stopped) == (1, 0)


def test_a_leader_that_dies_without_releasing_is_replaced_after_expiry(api: client.ApiClient, namespace: str,
                                                                        pair) -> None:
    electors, calls = pair
    with Sampler(electors).running() as sampler:
        assert wait_until(lambda: _leader(electors) is not None, timeout=5)
        first = _leader(electors)
        assert first is not None
        other = electors[1 - electors.index(first)]
        started = time.monotonic()
        assert first.stop(release=False)  # as a crash would: the lease still names it
        assert _lease(api, namespace)["spec"]["holderIdentity"] == first.identity
        assert wait_until(other.is_leader, timeout=TIMINGS["lease_duration"] + 3)
        takeover = time.monotonic() - started
    assert sampler.overlaps == 0
    # Not before the lease ran out (less the retry period the last renewal may predate the stop by)...
    assert takeover >= TIMINGS["lease_duration"] - TIMINGS["retry_period"] - 0.05
    # ...and within a lease and a couple of retries of it.
    assert takeover < TIMINGS["lease_duration"] + 3 * TIMINGS["retry_period"] + 0.5
    assert _lease(api, namespace)["spec"]["leaseTransitions"] == 1


def test_a_leader_cut_off_from_the_server_steps_down_before_anyone_takes_over(control_plane, api: client.ApiClient,
                                                                               namespace: str) -> None:
    cut_off_client = control_plane.api_client()
    calls = [Calls(), Calls()]
    first = _elector(cut_off_client, namespace, "alpha", calls[0])
    first.start()
    second: LeaderElector | None = None
    try:
        assert first.wait_for_leadership(5)
        second = _elector(api, namespace, "beta", calls[1])
        second.start()
        with Sampler([first, second]).running() as sampler:
            time.sleep(0.3)  # the second has seen the lease held
            assert not second.is_leader()
            cut = time.monotonic()
            # Every request of the leader now fails to connect: a network partition.
            cut_off_client.rest_client.request = _refuse
            assert wait_until(lambda: not first.is_leader(), timeout=3)
            stepped_down = time.monotonic() - cut
            assert wait_until(second.is_leader, timeout=TIMINGS["lease_duration"] + 3)
            taken_over = time.monotonic() - cut
        assert sampler.overlaps == 0
        assert stepped_down <= TIMINGS["renew_deadline"] + 0.1
        assert taken_over > stepped_down
        assert calls[0].stopped == 1
    finally:
        assert first.stop(timeout=3)
        if second is not None:
            assert second.stop(timeout=3)
        cut_off_client.close()


def test_electors_racing_for_a_fresh_lease_elect_exactly_one(api: client.ApiClient, namespace: str) -> None:
    calls = [Calls() for _ in range(3)]
    electors = [_elector(api, namespace, f"candidate-{i}", calls[i]) for i in range(3)]
    with Sampler(electors).running() as sampler:
        for elector in electors:
            elector.start()
        try:
            assert wait_until(lambda: _leader(electors) is not None, timeout=5)
            time.sleep(0.5)
            assert sum(elector.is_leader() for elector in electors) == 1
        finally:
            for elector in electors:
                assert elector.stop(timeout=3)
    assert sampler.overlaps == 0
    assert sum(c.started for c in calls) == 1


def test_timings_must_leave_the_old_term_to_end_first(api: client.ApiClient) -> None:
    with pytest.raises(ValueError):
        LeaderElector(api, "default", LEASE, lease_duration=5, renew_deadline=5, retry_period=1)
    with pytest.raises(ValueError):
        LeaderElector(api, "default", LEASE, lease_duration=5, renew_deadline=2, retry_period=2)
