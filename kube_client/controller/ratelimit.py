"""How long a failed key waits before it is tried again.

Two limits combine, and the longer wait wins: each key backs off exponentially on its
own (one broken object must not be retried in a hot loop), and all keys together
draw from a token bucket (a failure that hits every object at once, such as the API
server going away, must not turn into a retry storm against it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]

# 2**62 * any sane base already exceeds every cap; larger exponents would only overflow.
_MAX_EXPONENT = 62


class RateLimiter(Protocol):
    def when(self, key: str) -> float:
        """Seconds to wait before key may be tried again; counts one more failure."""
        ...

    def forget(self, key: str) -> None: ...

    def num_requeues(self, key: str) -> int: ...


class ItemExponentialBackoff:
    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        if base <= 0 or maximum < base:
            raise ValueError("need 0 < base <= maximum")
        self.base = base
        self.maximum = maximum
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        return min(self.maximum, self.base * 2.0 ** min(failures, _MAX_EXPONENT))

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        with self._lock:
            return self._failures.get(key, 0)


class TokenBucket:
    """qps tokens a second, up to burst saved; a retry takes one or waits for the next."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("need qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._at = clock()

    def when(self, key: str) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.qps)
            self._at = now
            # Going below zero reserves a future token, so callers queue up at qps
            # instead of all being told the same instant.
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: str) -> None:
        """The bucket is shared by every key; one key succeeding returns nothing to it."""

    def num_requeues(self, key: str) -> int:
        return 0


class MaxOf:
    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("need at least one rate limiter")
        self._limiters = limiters

    def when(self, key: str) -> float:
        return max(limiter.when(key) for limiter in self._limiters)

    def forget(self, key: str) -> None:
        for limiter in self._limiters:
            limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return max(limiter.num_requeues(key) for limiter in self._limiters)


def default_rate_limiter(base: float = 0.005, maximum: float = 1000.0, qps: float = 10.0,
                         burst: int = 100, clock: Clock = time.monotonic) -> RateLimiter:
    return MaxOf(ItemExponentialBackoff(base, maximum), TokenBucket(qps, burst, clock))
