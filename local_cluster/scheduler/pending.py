"""The pods waiting to be scheduled, and when each may be tried next.

A new pod, or one whose spec or labels changed, is tried at once. A pod that fits
nowhere waits for the cluster to change (a node added or changed, a pod leaving or
arriving), but never sooner than its back-off (doubling per failed attempt, capped)
allows, and is in any case retried after retry_interval, in case the change that
would let it fit is one nobody reports. Higher spec.priority goes first, then the
pod seen first.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    priority: int
    seen: float
    attempts: int = 0
    last_attempt: float = 0.0
    not_before: float = 0.0
    waiting_for_change: bool = False
    # The cluster change count when the current attempt began: a change that lands
    # while the pod is being tried must not be lost to the attempt's snapshot.
    taken_at_change: int = 0
    changed_during_attempt: bool = False


class PendingPods:
    def __init__(self, *, initial_backoff: float = 1.0, max_backoff: float = 10.0, retry_interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._retry_interval = retry_interval
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._changes = 0
        self._cond = threading.Condition()
        self._closed = False

    def backoff(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return min(self._initial_backoff * 2 ** (attempts - 1), self._max_backoff)

    def add(self, key: str, priority: int, *, changed: bool) -> None:
        """A pending pod was seen; changed says its spec or labels differ from before."""
        with self._cond:
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(priority, self._clock())
            elif changed:
                entry.priority = priority
                entry.changed_during_attempt = entry.not_before == math.inf
                entry.not_before = 0.0
                entry.waiting_for_change = False
            else:
                return
            self._cond.notify_all()

    def remove(self, key: str) -> None:
        with self._cond:
            self._entries.pop(key, None)

    def failed(self, key: str, *, unschedulable: bool) -> None:
        """An attempt failed: because nothing fits (wait for a change) or on an error (back off)."""
        with self._cond:
            entry = self._entries.get(key)
            if entry is None:
                return
            now = self._clock()
            entry.attempts += 1
            entry.last_attempt = now
            missed_change = entry.changed_during_attempt or entry.taken_at_change != self._changes
            entry.changed_during_attempt = False
            entry.waiting_for_change = unschedulable and not missed_change
            delay = self.backoff(entry.attempts)
            entry.not_before = now + (max(self._retry_interval, delay) if entry.waiting_for_change else delay)

    def cluster_changed(self) -> None:
        with self._cond:
            self._changes += 1
            woken = False
            for entry in self._entries.values():
                if entry.waiting_for_change:
                    entry.waiting_for_change = False
                    entry.not_before = min(entry.not_before, entry.last_attempt + self.backoff(entry.attempts))
                    woken = True
            if woken:
                self._cond.notify_all()

    def take_ready(self, timeout: float) -> list[str]:
        """Block until some pods may be tried (or timeout, or close); their keys, in order."""
        deadline = self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                ready = [(-e.priority, e.seen, key) for key, e in self._entries.items() if e.not_before <= now]
                if ready:
                    for _, _, key in ready:
                        # Parked until the caller reports the outcome (failed/remove).
                        self._entries[key].not_before = math.inf
                        self._entries[key].taken_at_change = self._changes
                        self._entries[key].changed_during_attempt = False
                    return [key for _, _, key in sorted(ready)]
                wake = min((e.not_before for e in self._entries.values()), default=math.inf)
                remaining = min(wake, deadline) - now
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)
            return []

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
