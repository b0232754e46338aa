"""Our own writes, ahead of the informer that has not delivered them yet.

A controller that writes an object and is woken again (by another object's event) before
its informer shows that write reads a stale copy; a write guarded by that copy's
resourceVersion then fails with 409 and the key goes round again, rate limited. Keeping
the object each write returned, until the informer moves past every version we know to
be stale, lets the next pass start from what we wrote. Per key: a work queue hands a key
to one worker at a time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class _Written:
    latest: Obj
    stale_versions: set[str] = field(default_factory=set)


class WrittenObjects:
    def __init__(self) -> None:
        self._by_key: dict[str, _Written] = {}
        self._lock = threading.Lock()

    def remember(self, key: str, before: Obj, after: Obj) -> Obj:
        """``after`` is what writing ``before`` returned; returns it, for chaining."""
        old = _version(before)
        new = _version(after)
        if old and new and old != new:
            with self._lock:
                entry = self._by_key.setdefault(key, _Written(after))
                entry.latest = after
                entry.stale_versions.add(old)
        return after

    def newest(self, key: str, cached: Obj | None) -> Obj | None:
        """The informer's copy, or our own later write while the informer lags behind it."""
        with self._lock:
            entry = self._by_key.get(key)
            if entry is None:
                return cached
            if cached is not None and _version(cached) in entry.stale_versions:
                return entry.latest
            del self._by_key[key]  # the informer caught up (or moved on, or the object is gone)
            return cached


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
