"""Expectations: counted creations and deletions, UID tracking, and the TTL safety valve."""

from __future__ import annotations

from kube_client.controller.expectations import ControllerExpectations, UIDTrackingControllerExpectations


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_unknown_keys_are_satisfied() -> None:
    assert ControllerExpectations().satisfied("ns/vm")


def test_creations_and_deletions_are_counted_off() -> None:
    expectations = ControllerExpectations()
    expectations.expect_creations("ns/rs", 2)
    expectations.expect_deletions("ns/rs", 1)
    assert expectations.pending("ns/rs") == (2, 1)
    expectations.creation_observed("ns/rs")
    expectations.deletion_observed("ns/rs")
    assert not expectations.satisfied("ns/rs")
    expectations.creation_observed("ns/rs")
    assert expectations.satisfied("ns/rs")
    # Extra observations (a relist reporting a pod again) do not bank credit for later.
    expectations.creation_observed("ns/rs")
    expectations.expect_creations("ns/rs", 1)
    assert not expectations.satisfied("ns/rs")
    expectations.set_expectations("ns/rs", 0, 2)
    assert expectations.pending("ns/rs") == (0, 2)


def test_keys_are_independent_and_can_be_deleted() -> None:
    expectations = ControllerExpectations()
    expectations.expect_creations("ns/a", 1)
    assert expectations.satisfied("ns/b")
    expectations.creation_observed("ns/b")  # nothing expected: ignored
    assert expectations.satisfied("ns/b")
    expectations.delete_expectations("ns/a")
    assert expectations.satisfied("ns/a")
    assert expectations.pending("ns/a") == (0, 0)


def test_expectations_expire_so_a_lost_event_cannot_block_forever() -> None:
    clock = FakeClock()
    expectations = ControllerExpectations(ttl=300, clock=clock)
    expectations.expect_creations("ns/vmi", 1)
    clock.now += 299
    assert not expectations.satisfied("ns/vmi")
    clock.now += 2
    assert expectations.satisfied("ns/vmi")
    # New writes after the expiry start a fresh count with a fresh TTL.
    expectations.expect_creations("ns/vmi", 1)
    assert expectations.pending("ns/vmi") == (1, 0)
    assert not expectations.satisfied("ns/vmi")


def test_raising_restarts_the_ttl() -> None:
    clock = FakeClock()
    expectations = ControllerExpectations(ttl=10, clock=clock)
    expectations.expect_creations("k", 1)
    clock.now += 8
    expectations.expect_deletions("k", 1)
    clock.now += 8
    assert not expectations.satisfied("k")
    assert expectations.pending("k") == (1, 1)


def test_uid_tracking_counts_each_deletion_once() -> None:
    expectations = UIDTrackingControllerExpectations()
    expectations.expect_deletions("ns/rs", ["u1", "u2"])
    assert expectations.pending_deletions("ns/rs") == {"u1", "u2"}
    expectations.deletion_observed("ns/rs", "u1")
    expectations.deletion_observed("ns/rs", "u1")  # the same pod reported twice
    expectations.deletion_observed("ns/rs", "u9")  # not one we deleted
    assert not expectations.satisfied("ns/rs")
    assert expectations.pending_deletions("ns/rs") == {"u2"}
    expectations.deletion_observed("ns/rs", "u2")
    assert expectations.satisfied("ns/rs")


def test_uid_tracking_ignores_a_uid_expected_twice_and_mixes_with_creations() -> None:
    expectations = UIDTrackingControllerExpectations()
    expectations.expect_deletions("k", ["u1"])
    expectations.expect_deletions("k", ["u1"])
    expectations.expect_creations("k", 1)
    assert expectations.pending("k") == (1, 1)
    expectations.deletion_observed("k", "u1")
    assert not expectations.satisfied("k")
    expectations.creation_observed("k")
    assert expectations.satisfied("k")


def test_uid_tracking_expiry_and_delete() -> None:
    clock = FakeClock()
    expectations = UIDTrackingControllerExpectations(ttl=5, clock=clock)
    expectations.expect_deletions("k", ["u1"])
    clock.now += 6
    assert expectations.satisfied("k")
    # After expiry the stale UID is dropped; only the new one is waited for.
    expectations.expect_deletions("k", ["u2"])
    assert expectations.pending_deletions("k") == {"u2"}
    assert expectations.pending("k") == (0, 1)
    expectations.delete_expectations("k")
    assert expectations.satisfied("k")
    assert expectations.pending_deletions("k") == set()
