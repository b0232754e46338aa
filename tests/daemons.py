"""Run a thread-based control-plane daemon for one test and prove it stops cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

D = TypeVar("D")


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name or t.name.startswith("reflector-")]


@contextmanager
def running(daemon: D, api_client: Any, thread_name: str, ready: Callable[[D], bool], what: str) -> Iterator[D]:
    """Start ``daemon``, wait until ``ready``; afterwards stop it within 3 s, leaving no
    thread named ``thread_name`` and no reflector behind."""
    daemon.start()  # type: ignore[attr-defined]
    try:
        assert ready(daemon), what
        yield daemon
    finally:
        started = time.monotonic()
        daemon.stop()  # type: ignore[attr-defined]
        elapsed = time.monotonic() - started
        api_client.close()
        assert not _threads(thread_name), f"threads left running: {_threads(thread_name)}"
        assert elapsed < 3, f"stop() took {elapsed:.1f}s"
