"""Waiting for conditions, and recording what subscribers were told, without sleeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        time.sleep(interval)
    return True


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


class Recorder:
    """The events one subscriber received, as (kind, name, old data, new data)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[tuple[str, str, Any, Any]] = []

    def on_add(self, obj: Obj) -> None:
        self._record(("add", name_of(obj), None, obj.get("data")))

    def on_update(self, old: Obj, new: Obj) -> None:
        self._record(("update", name_of(new), old.get("data"), new.get("data")))

    def on_delete(self, obj: Obj) -> None:
        self._record(("delete", name_of(obj), obj.get("data"), None))

    def _record(self, event: tuple[str, str, Any, Any]) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[str, str, Any, Any]]], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.events), timeout)

    def snapshot(self) -> list[tuple[str, str, Any, Any]]:
        with self._cond:
            return list(self.events)
