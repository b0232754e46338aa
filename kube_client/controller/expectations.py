"""What a controller is still waiting to see in its cache after its own writes.

A controller that creates a pod for a VMI and reconciles the VMI again before the
informer has delivered that pod would see no pod and create a second one. So before
writing, it records how many creations (deletions) it expects for the owner's key;
the informer's handlers count them off as they arrive; and the controller does not
act on the owner while any are outstanding (it will be woken by the arrival).

A watch event can be lost (the watch dropped and the object came and went before
the relist), so expectations older than a TTL count as met: the controller then acts
on whatever the cache shows, which by then is the truth.

A write that failed will never be observed, so the controller must count it off
itself (creation_observed / deletion_observed) right after the failure. And the
handler that observes an arrival must count it off before it enqueues the owner:
otherwise the owner's reconcile can run in between, find the expectation unmet, and
nothing would wake it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]

DEFAULT_TTL = 300.0


@dataclass
class _Expected:
    creations: int
    deletions: int
    since: float


class ControllerExpectations:
    def __init__(self, ttl: float = DEFAULT_TTL, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._expected: dict[str, _Expected] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self.raise_expectations(key, count, 0)

    def expect_deletions(self, key: str, count: int) -> None:
        self.raise_expectations(key, 0, count)

    def set_expectations(self, key: str, creations: int, deletions: int) -> None:
        """Replace whatever was expected for key (a fresh decision after a full look)."""
        with self._lock:
            self._expected[key] = _Expected(creations, deletions, self._clock())

    def raise_expectations(self, key: str, creations: int, deletions: int) -> None:
        """Add to what is expected; the TTL restarts, as the new writes are only now made."""
        with self._lock:
            record = self._expected.get(key)
            if record is None or self._expired(record):
                self._expected[key] = _Expected(creations, deletions, self._clock())
                return
            # Surplus observations (a relist reporting an object again) must not pay
            # for writes not yet seen, so counts start from zero at worst.
            record.creations = max(record.creations, 0) + creations
            record.deletions = max(record.deletions, 0) + deletions
            record.since = self._clock()

    def creation_observed(self, key: str) -> None:
        with self._lock:
            record = self._expected.get(key)
            if record is not None:
                record.creations -= 1

    def deletion_observed(self, key: str) -> None:
        with self._lock:
            record = self._expected.get(key)
            if record is not None:
                record.deletions -= 1

    def satisfied(self, key: str) -> bool:
        """True when nothing is outstanding, nothing was ever expected (a restarted
        controller knows of no writes in flight), or the expectation is stale."""
        with self._lock:
            record = self._expected.get(key)
            if record is None:
                return True
            return (record.creations <= 0 and record.deletions <= 0) or self._expired(record)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still outstanding, for logs and tests."""
        with self._lock:
            record = self._expected.get(key)
            return (max(0, record.creations), max(0, record.deletions)) if record else (0, 0)

    def delete_expectations(self, key: str) -> None:
        """The owner is gone: forget it, so its key cannot leak or block a namesake."""
        with self._lock:
            self._expected.pop(key, None)

    def _expired(self, record: _Expected) -> bool:
        return self._clock() - record.since > self.ttl


class UIDTrackingControllerExpectations:
    """Deletions are counted by UID, because one deletion is seen more than once: a pod
    first gets a deletionTimestamp (an update), then goes away (a delete), and a relist
    can report it again. Counting each UID once keeps the count honest."""

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Clock = time.monotonic) -> None:
        self._counts = ControllerExpectations(ttl, clock)
        self._lock = threading.Lock()
        self._uids: dict[str, set[str]] = {}

    @property
    def ttl(self) -> float:
        return self._counts.ttl

    def expect_creations(self, key: str, count: int) -> None:
        self._counts.expect_creations(key, count)

    def creation_observed(self, key: str) -> None:
        self._counts.creation_observed(key)

    def expect_deletions(self, key: str, uids: Iterable[str]) -> None:
        with self._lock:
            tracked = self._uids.setdefault(key, set())
            if self._counts.satisfied(key):
                tracked.clear()  # stale UIDs from an expired expectation must not count
            fresh = set(uids) - tracked
            tracked.update(fresh)
            self._counts.raise_expectations(key, 0, len(fresh))

    def deletion_observed(self, key: str, uid: str) -> None:
        with self._lock:
            tracked = self._uids.get(key)
            if tracked is None or uid not in tracked:
                return
            tracked.discard(uid)
            self._counts.deletion_observed(key)

    def pending_deletions(self, key: str) -> set[str]:
        with self._lock:
            return set(self._uids.get(key, ()))

    def satisfied(self, key: str) -> bool:
        return self._counts.satisfied(key)

    def pending(self, key: str) -> tuple[int, int]:
        return self._counts.pending(key)

    def delete_expectations(self, key: str) -> None:
        with self._lock:
            self._uids.pop(key, None)
            self._counts.delete_expectations(key)
