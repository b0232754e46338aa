"""One followed kind shared by every controller that needs it: cache, indexes, subscribers.

A SharedInformer runs one Reflector (one list+watch against the server) however many
controllers read it, keeps the objects in an IndexedStore, and tells each subscriber
about every add, update and delete with the old and new object. Subscribers are
expected to be quick (they enqueue keys); they are called one at a time, so a
subscriber never sees a resync of an object interleaved with a newer update of it.

A periodic resync re-delivers every cached object as an update (old is new). Nothing
changed on the server; it exists so a controller that dropped a key (a bug, a
transient error it chose not to retry) converges again without waiting for a write.

Subscribers and listers are handed the cached objects themselves, not copies (copying
every object for every reader would dominate the cost): copy before changing one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from kube_client.controller.resource import ListMethod, Resource
from kube_client.controller.store import IndexedStore, IndexFunc
from kube_client.reflector import DELETED, Change, Reflector

Obj = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventHandler:
    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None  # (old, new)
    on_delete: Callable[[Obj], None] | None = None  # the last state known


class SharedInformer:
    def __init__(self, api_client: client.ApiClient | None, source: Resource | ListMethod,
                 namespace: str | None = None, *, label_selector: str | None = None,
                 field_selector: str | None = None, resync_period: float = 0.0, name: str | None = None,
                 watch_seconds: int = 300) -> None:
        """source is a Resource, or a generated-client list method already bound to its scope
        (a bare method cannot be given a namespace: their argument orders differ)."""
        if isinstance(source, Resource):
            if api_client is None:
                raise ValueError("a Resource needs an api_client to list through")
            list_method = source.lister(api_client, namespace)
            name = name or (f"{source.plural}-{namespace}" if namespace else source.plural)
        else:
            if namespace is not None:
                raise ValueError("bind the namespace into the list method, e.g. functools.partial")
            list_method = source
            name = name or getattr(source, "__name__", "objects")
        if resync_period < 0:
            raise ValueError("resync_period must be >= 0 (0 turns resync off)")
        self.name = name
        self._list_method = list_method
        self._selectors = {key: value for key, value in
                           (("label_selector", label_selector), ("field_selector", field_selector)) if value}
        self._resync_period = resync_period
        self._store = IndexedStore()
        self._handlers: list[EventHandler] = []
        # Held while the cache changes and subscribers run, by the watch and the resync
        # thread alike, so subscribers are never called concurrently.
        self._dispatch = threading.RLock()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._reflector = Reflector(name, self._list_or_watch, self._on_change, watch_seconds=watch_seconds)
        self._resync_thread: threading.Thread | None = None
        self._started = False

    # --- wiring -----------------------------------------------------------------------

    def add_event_handler(self, handler: EventHandler | None = None, *,
                          on_add: Callable[[Obj], None] | None = None,
                          on_update: Callable[[Obj, Obj], None] | None = None,
                          on_delete: Callable[[Obj], None] | None = None) -> EventHandler:
        """A subscriber joining late is first told about every cached object as an add, so
        it sees the same world as those that were there from the start."""
        handler = handler or EventHandler(on_add, on_update, on_delete)
        with self._dispatch:
            self._handlers.append(handler)
            if handler.on_add is not None:
                for obj in self._store.list():
                    _safely(self.name, handler.on_add, obj)
        return handler

    def remove_event_handler(self, handler: EventHandler) -> None:
        with self._dispatch:
            self._handlers.remove(handler)

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        self._store.add_index(name, func)

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError(f"informer {self.name} was already started; make a new one")
        self._started = True
        self._reflector.start()
        if self._resync_period > 0:
            self._resync_thread = threading.Thread(target=self._resync_loop, name=f"informer-resync-{self.name}",
                                                   daemon=True)
            self._resync_thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop following the server; True when every thread ended within timeout."""
        self._stopping.set()
        self._reflector.stop()
        deadline = time.monotonic() + timeout
        stopped = self._reflector.join(max(0.0, deadline - time.monotonic()))
        if self._resync_thread is not None:
            self._resync_thread.join(max(0.0, deadline - time.monotonic()))
            stopped = stopped and not self._resync_thread.is_alive()
        if not stopped:
            log.warning("informer %s did not stop within %.1fs", self.name, timeout)
        return stopped

    def has_synced(self) -> bool:
        """True once the cache holds the whole first list and subscribers were told of it."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._synced.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping.is_set():
                return False
            self._synced.wait(min(remaining, 0.1))
        return True

    # --- the lister -------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._store.get(key)

    def list(self, namespace: str | None = None) -> list[Obj]:
        return self._store.list(namespace)

    def keys(self) -> list[str]:
        return self._store.keys()

    def by_index(self, name: str, value: str) -> list[Obj]:
        return self._store.by_index(name, value)

    def index_keys(self, name: str, value: str) -> list[str]:
        return self._store.index_keys(name, value)

    # --- feeding the cache ------------------------------------------------------------

    def _list_or_watch(self, **kwargs: Any) -> Any:
        if kwargs.get("watch"):
            # The reflector opens its watch only after handing over the whole first list,
            # on the same thread, so by now the cache and every subscriber have it.
            self._synced.set()
        return self._list_method(**self._selectors, **kwargs)

    def _on_change(self, change: Change) -> None:
        with self._dispatch:
            if change.type == DELETED:
                self._store.remove(change.obj)
                for handler in list(self._handlers):
                    if handler.on_delete is not None:
                        _safely(self.name, handler.on_delete, change.obj)
                return
            old = self._store.put(change.obj)
            for handler in list(self._handlers):
                if old is None and handler.on_add is not None:
                    _safely(self.name, handler.on_add, change.obj)
                elif old is not None and handler.on_update is not None:
                    _safely(self.name, handler.on_update, old, change.obj)

    def _resync_loop(self) -> None:
        while not self._stopping.wait(self._resync_period):
            if self._synced.is_set():
                self._resync()

    def _resync(self) -> None:
        with self._dispatch:
            for obj in self._store.list():
                if self._stopping.is_set():
                    return
                for handler in list(self._handlers):
                    if handler.on_update is not None:
                        _safely(self.name, handler.on_update, obj, obj)


def _safely(informer: str, func: Callable[..., None], *args: Obj) -> None:
    try:
        func(*args)
    except Exception:  # one subscriber's bug must not starve the others or stop the watch
        log.exception("informer %s: a subscriber failed", informer)
