"""The queue of keys a controller's workers reconcile.

Keys, not objects, are queued: a worker reads the newest state from the cache when it
gets to the key, so ten updates of one object while it waits cost one reconcile. A
key is held by at most one worker at a time (two workers reconciling one object would
race each other's writes); if it changes while held, it is queued again once the
worker calls done(), so the last change is never missed.

Delayed keys (add_after, add_rate_limited) wait in a heap and are moved into the queue
by whichever thread next looks at it, so the queue needs no thread of its own.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque

from kube_client.controller.ratelimit import RateLimiter, default_rate_limiter


class WorkQueue:
    def __init__(self, rate_limiter: RateLimiter | None = None) -> None:
        self._rate_limiter = rate_limiter or default_rate_limiter()
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        # Keys that need a reconcile: queued, or changed while being processed.
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        # Earliest time each delayed key is due; an entry in the heap that no longer
        # matches was superseded by an earlier add_after and is skipped.
        self._due: dict[str, float] = {}
        self._order = itertools.count()
        self._shutting_down = False

    # --- producers --------------------------------------------------------------------

    def add(self, key: str) -> None:
        with self._cond:
            self._add(key)

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            ready_at = time.monotonic() + delay
            if key in self._due and self._due[key] <= ready_at:
                return
            self._due[key] = ready_at
            heapq.heappush(self._delayed, (ready_at, next(self._order), key))
            # A getter asleep until a later key is due must recompute its wait.
            self._cond.notify_all()

    def add_rate_limited(self, key: str) -> None:
        self.add_after(key, self._rate_limiter.when(key))

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts the back-off from the beginning."""
        self._rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self._rate_limiter.num_requeues(key)

    # --- consumers --------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> tuple[str | None, bool]:
        """(key, False) with the key now held by the caller; (None, False) when timeout
        passed with nothing ready; (None, True) once the queue is shut down."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                # Stopping means stopping now: keys still queued are left for the
                # resync after the next start, rather than delaying shutdown.
                if self._shutting_down:
                    return None, True
                now = time.monotonic()
                self._promote_due(now)
                if self._queue:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key, False
                waits = [t - now for t in (deadline, self._next_due()) if t is not None]
                if deadline is not None and deadline <= now:
                    return None, False
                self._cond.wait(max(0.0, min(waits)) if waits else None)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    # --- lifecycle --------------------------------------------------------------------

    def shut_down(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to be handed out (delayed keys count once they are due)."""
        with self._cond:
            self._promote_due(time.monotonic())
            return len(self._queue)

    def waiting(self) -> int:
        """Keys delayed and not yet due."""
        with self._cond:
            return len(self._due)

    # --- under the condition's lock ---------------------------------------------------

    def _add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() queues it again
        self._queue.append(key)
        self._cond.notify()

    def _promote_due(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) == ready_at:
                del self._due[key]
                self._add(key)

    def _next_due(self) -> float | None:
        while self._delayed and self._due.get(self._delayed[0][2]) != self._delayed[0][0]:
            heapq.heappop(self._delayed)  # superseded
        return self._delayed[0][0] if self._delayed else None
