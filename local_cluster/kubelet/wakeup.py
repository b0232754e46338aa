"""A pod worker's alarm clock: set() from any thread like a threading.Event, and a wait
that also ends when one of the pod's trampolines exits (its pidfd becomes readable) or
starts its command (its "started" pipe does).

Why: a worker with nothing to do sleeps long instead of polling every 100 ms (a node
of a hundred idle pods spent most of its CPU on that), and still sees a container exit
at once.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterable


class Wakeup:
    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._lock = threading.Lock()
        self._closed = False

    def set(self) -> None:
        with self._lock:
            if not self._closed:
                os.eventfd_write(self._fd, 1)

    def wait(self, timeout: float, fds: Iterable[int] = ()) -> None:
        """Until set(), one of ``fds`` (pidfds, pipes) becomes readable, or timeout."""
        poller = select.poll()
        for fd in (self._fd, *fds):
            poller.register(fd, select.POLLIN)
        poller.poll(max(0, int(timeout * 1000)))

    def clear(self) -> None:
        try:
            os.eventfd_read(self._fd)
        except BlockingIOError:
            pass

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)


def exit_fd(pid: int) -> int | None:
    """A pidfd readable once ``pid`` exits; None if it is gone already (or the kernel
    has no pidfds: the worker then falls back to its short poll)."""
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
