"""The queue of keys a controller's workers reconcile.

Keys, not objects, are queued: a worker reads the newest state from the cache when it
gets to the key, so ten updates of one object while it waits cost one reconcile. A
key is held by at most one worker at a time (two workers reconciling one object would
race each other's writes); if it changes while held, it is queued again once the
worker calls done(), so the last change is never missed.

Delayed keys (add_after, add_rate_limited) wait in a heap and are moved into the queue
by whichever thread next looks at it, so the queue needs no thread of its own.

An instrumented queue (instrument()) reports each key's way through it to a QueueMetrics
(queue_metrics.WorkqueueMetrics exports them as client-go's workqueue metrics); without
one, the hot path pays one ``is None`` test per step.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from typing import Protocol

from kube_client.controller.ratelimit import RateLimiter, default_rate_limiter


class QueueMetrics(Protocol):
    """What an instrumented WorkQueue reports. Every call but attach is made with the
    queue's lock held, so the implementation's per-key bookkeeping needs no lock of its
    own (and one taken here would be a second lock per step on the hot path)."""

    def attach(self, lock: threading.Condition) -> None:
        """Called once, first: the lock the other calls hold, for readers at scrape time."""
        ...

    def added(self, key: str) -> None:
        """key now needs a reconcile (client-go's add: counted once per wake-up, not per add())."""
        ...

    def handed_out(self, key: str) -> None: ...

    def finished(self, key: str) -> None:
        """done(key); also for a key handed out before the queue was instrumented."""
        ...

    def retried(self) -> None:
        """add_after (so add_rate_limited too), as client-go's delaying queue counts retries."""
        ...


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
        self._metrics: QueueMetrics | None = None

    def instrument(self, metrics: QueueMetrics) -> None:
        """Report to ``metrics`` from now on. Keys already waiting are reported as added
        now, so the depth it keeps never goes below zero."""
        with self._cond:
            if self._metrics is not None:
                raise RuntimeError("this queue already reports to a QueueMetrics")
            metrics.attach(self._cond)
            for key in self._dirty:
                metrics.added(key)
            self._metrics = metrics

    # --- producers --------------------------------------------------------------------

    def add(self, key: str) -> None:
        with self._cond:
            self._add(key)

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            with self._cond:
                if self._metrics is not None and not self._shutting_down:
                    self._metrics.retried()
                self._add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            if self._metrics is not None:
                self._metrics.retried()
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
                    if self._metrics is not None:
                        self._metrics.handed_out(key)
                    return key, False
                waits = [t - now for t in (deadline, self._next_due()) if t is not None]
                if deadline is not None and deadline <= now:
                    return None, False
                self._cond.wait(max(0.0, min(waits)) if waits else None)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if self._metrics is not None:
                self._metrics.finished(key)
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
        if self._metrics is not None:
            self._metrics.added(key)
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
