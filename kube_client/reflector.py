"""A local copy of one kind of object, kept current by list-then-watch.

The copy is listed once, then followed with a watch that resumes from the last
resourceVersion seen (bookmarks included) whenever the server ends it; only when
the server no longer holds that history (410 Gone) is the whole kind listed again,
and the difference from the copy is reported as changes, so a handler sees a
consistent stream across relists. The watch runs on its own thread through the
official client; stop() shuts its socket down, so stopping never waits for the
server to end a long watch.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

from kube_client.rawapi import call, object_key, status_code

Obj = dict[str, Any]
log = logging.getLogger(__name__)

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
_GONE = 410
_PAGE = 500


@dataclass(frozen=True)
class Change:
    type: str
    obj: Obj
    # The copy's previous state of the object (None when it was not known).
    old: Obj | None


Handler = Callable[[Change], None]


class WatchExpired(Exception):
    """The server can no longer resume from our resourceVersion: list again."""


class Reflector:
    def __init__(self, name: str, list_method: Callable[..., Any], handler: Handler, *,
                 watch_seconds: int = 300) -> None:
        self.name = name
        self._list = list_method
        self._handler = handler
        self._watch_seconds = watch_seconds
        self._items: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._response: Any = None
        self._resource_version = ""
        self.synced = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"reflector-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            response = self._response
        if response is not None:
            _interrupt(response)

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    # --- reads ------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    # --- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if not self._resource_version:
                    self._relist()
                self._watch()
                failures = 0
            except WatchExpired:
                log.info("%s: watch history expired; listing again", self.name)
                self._resource_version = ""
            except Exception as error:  # the API server may be restarting: retry, never die
                if self._stopping.is_set():
                    break
                failures += 1
                delay = min(0.2 * 2 ** failures, 10.0) * random.uniform(0.8, 1.2)
                log.warning("%s: list/watch failed (%s); retrying in %.1fs", self.name, error, delay)
                if status_code(error) == _GONE:
                    self._resource_version = ""
                self._stopping.wait(delay)

    def _relist(self) -> None:
        listed: list[Obj] = []
        token = ""
        version = ""
        while True:
            page = call(self._list, limit=_PAGE, _continue=token) if token else call(self._list, limit=_PAGE)
            listed.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion", ""))
            token = meta.get("continue") or ""
            if not token:
                break
        changes = self._replace(listed)
        self._resource_version = version
        self.synced.set()
        for change in changes:
            self._notify(change)

    def _replace(self, listed: list[Obj]) -> list[Change]:
        fresh = {object_key(obj): obj for obj in listed}
        changes: list[Change] = []
        with self._lock:
            for key, old in self._items.items():
                if key not in fresh:
                    changes.append(Change(DELETED, old, old))
            for key, obj in fresh.items():
                old = self._items.get(key)
                if old is None:
                    changes.append(Change(ADDED, obj, None))
                elif _version(old) != _version(obj):
                    changes.append(Change(MODIFIED, obj, old))
            self._items = fresh
        return changes

    def _watch(self) -> None:
        response = self._list(watch=True, resource_version=self._resource_version, allow_watch_bookmarks=True,
                              timeout_seconds=self._watch_seconds, _preload_content=False,
                              _request_timeout=(10.0, self._watch_seconds + 30.0))
        with self._lock:
            if self._stopping.is_set():
                response.close()
                return
            self._response = response
        try:
            for line in iter_resp_lines(response):
                if line.strip():
                    self._apply(json.loads(line))
                if self._stopping.is_set():
                    return
        finally:
            with self._lock:
                self._response = None
            response.close()
            response.release_conn()

    def _apply(self, event: Obj) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == _GONE:
                raise WatchExpired(obj.get("message", ""))
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message', '')}")
        version = _version(obj)
        if kind == "BOOKMARK":
            self._resource_version = version or self._resource_version
            return
        key = object_key(obj)
        with self._lock:
            old = self._items.get(key)
            if kind == DELETED:
                self._items.pop(key, None)
            else:
                self._items[key] = obj
        self._resource_version = version or self._resource_version
        if kind == DELETED:
            self._notify(Change(DELETED, obj, old))
        else:
            self._notify(Change(ADDED if old is None else MODIFIED, obj, old))

    def _notify(self, change: Change) -> None:
        try:
            self._handler(change)
        except Exception:  # a handler bug must not stop the copy from following the server
            log.exception("%s: handler failed on %s %s", self.name, change.type, object_key(change.obj))


def stop_and_join(reflectors: list[Reflector], worker: threading.Thread | None, worker_name: str,
                  timeout: float) -> None:
    """Stop the reflectors, then wait (bounded) for the worker that consumed them and for them."""
    for reflector in reflectors:
        reflector.stop()
    deadline = time.monotonic() + timeout
    if worker is not None:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            log.warning("%s did not stop within %.0fs", worker_name, timeout)
    for reflector in reflectors:
        if not reflector.join(max(0.0, deadline - time.monotonic())):
            log.warning("reflector %s did not stop within %.0fs", reflector.name, timeout)


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _interrupt(response: Any) -> None:
    """Unblock a thread reading the response: closing alone does not wake a blocked recv."""
    try:
        response.shutdown()
        return
    except Exception:
        pass
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
