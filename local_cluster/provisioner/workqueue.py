"""Keys of objects to reconcile, each handed out once at a time, retried with back-off.

A key added while it is being worked on is handed out again once that work is
done, so no change is lost and no two workers ever hold the same key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class WorkQueue:
    def __init__(self, *, initial_backoff: float = 0.5, max_backoff: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._clock = clock
        self._due: dict[str, float] = {}
        self._processing: set[str] = set()
        # Keys added while being processed: due again once done.
        self._again: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closed = False

    def add(self, key: str, delay: float = 0.0) -> None:
        with self._cond:
            when = self._clock() + delay
            pending = self._again if key in self._processing else self._due
            pending[key] = min(pending.get(key, when), when)
            self._cond.notify_all()

    def retry(self, key: str) -> float:
        """Add the key again after its back-off (doubling with each consecutive failure)."""
        with self._cond:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
        delay = min(self._initial_backoff * 2 ** (failures - 1), self._max_backoff)
        self.add(key, delay)
        return delay

    def forget(self, key: str) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def get(self, timeout: float) -> str | None:
        deadline = self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                ready = [(when, key) for key, when in self._due.items() if when <= now]
                if ready:
                    _, key = min(ready)
                    del self._due[key]
                    self._processing.add(key)
                    return key
                wake = min(self._due.values(), default=deadline)
                remaining = min(wake, deadline) - now
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return None

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._again:
                when = self._again.pop(key)
                self._due[key] = min(self._due.get(key, when), when)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
