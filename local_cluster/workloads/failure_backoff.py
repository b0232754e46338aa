"""How soon a DaemonSet may replace another failed pod on the same node.

A daemon pod that fails at once on some node (the kubelet refuses it, its command
exits) would otherwise be deleted and recreated in a hot loop. Each failure on a node
doubles the wait before the next failed pod there is deleted, up to a cap; a node
that has been quiet for twice the cap starts over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class FailureBackoff:
    def __init__(self, initial: float = 1.0, maximum: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._initial = initial
        self._maximum = maximum
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (current delay, when it was last bumped)
        self._entries: dict[str, tuple[float, float]] = {}

    def remaining(self, key: str) -> float:
        """Seconds still to wait before key may fail again; 0 when it may now."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return 0.0
            delay, since = entry
            return max(0.0, since + delay - self._clock())

    def bump(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            if entry is None or now - entry[1] > 2 * self._maximum:
                self._entries[key] = (self._initial, now)
            else:
                self._entries[key] = (min(entry[0] * 2, self._maximum), now)

    def forget_prefix(self, prefix: str) -> None:
        """Drop the entries of a DaemonSet that is gone."""
        with self._lock:
            for key in [k for k in self._entries if k.startswith(prefix)]:
                del self._entries[key]
