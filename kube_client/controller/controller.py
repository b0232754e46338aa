"""A level-triggered controller: informers feed keys into a queue, workers reconcile them.

reconcile(key) looks at the cache (never at the event that woke it) and makes the
world match; it is told nothing about what changed, so it works the same after a
missed event, a resync or a restart. Returning means done (the key's back-off is
reset; a number asks for another look after that many seconds); raising means try
again later, backing off per key.

With a leadership gate, workers hold off while another replica leads; the informers
it owns keep running regardless, so a new leader starts with a warm cache (virt-controller
instead starts its shared informers once it leads, as upstream does).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from kube_client.controller.informer import EventHandler, SharedInformer
from kube_client.controller.ratelimit import RateLimiter
from kube_client.controller.workqueue import WorkQueue
from kube_client.rawapi import object_key

Obj = dict[str, Any]
log = logging.getLogger(__name__)

Reconcile = Callable[[str], float | None]
KeyFunc = Callable[[Obj], Iterable[str]]

# How often idle waits look up to notice stop() or a change of leadership.
_POLL = 0.1


class LeadershipGate(Protocol):
    def is_leader(self) -> bool: ...

    def wait_for_leadership(self, timeout: float) -> bool: ...


def own_key(obj: Obj) -> list[str]:
    return [object_key(obj)]


def controller_owner_keys(kind: str) -> KeyFunc:
    """The namespace/name of the managing owner of the given kind (a VMI's pod -> the VMI)."""
    def keys(obj: Obj) -> list[str]:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        return [f"{namespace}/{ref['name']}" if namespace else str(ref["name"])
                for ref in meta.get("ownerReferences") or []
                if ref.get("controller") and ref.get("kind") == kind and ref.get("name")]
    return keys


class Controller:
    def __init__(self, name: str, reconcile: Reconcile, *, workers: int = 1,
                 informers: Sequence[SharedInformer] = (), shared: Sequence[SharedInformer] = (),
                 rate_limiter: RateLimiter | None = None, leader: LeadershipGate | None = None) -> None:
        """informers are the ones this controller runs (starts and stops); shared ones are
        run by their owner, and the workers here only wait for them to sync (as for those
        it watch()es)."""
        if workers < 1:
            raise ValueError("need at least one worker")
        self.name = name
        self.queue = WorkQueue(rate_limiter)
        self._reconcile = reconcile
        self._workers = workers
        self._owned = list(informers)
        self._watched: list[SharedInformer] = list(shared)
        self._leader = leader
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- wiring -----------------------------------------------------------------------

    def watch(self, informer: SharedInformer, keys: KeyFunc = own_key) -> EventHandler:
        """Enqueue the keys of every object the informer reports. On an update both the
        old and the new object's keys are queued, so an object that moved from one
        owner to another wakes both."""
        def on_add(obj: Obj) -> None:
            self._enqueue_all(keys(obj))

        def on_update(old: Obj, new: Obj) -> None:
            self._enqueue_all(dict.fromkeys([*keys(old), *keys(new)]))

        def on_delete(obj: Obj) -> None:
            self._enqueue_all(keys(obj))

        self._watched.append(informer)
        return informer.add_event_handler(on_add=on_add, on_update=on_update, on_delete=on_delete)


    def watch_owned(self, informer: SharedInformer, owner_kind: str, *,
                    created: Callable[[str, Obj], None] | None = None,
                    deleted: Callable[[str, Obj], None] | None = None) -> EventHandler:
        """Wake the managing owner (controller ownerReference of ``owner_kind``) of every
        dependent the informer reports. ``created``/``deleted`` run before the owner is
        queued, so expectations are counted off before its reconcile can look at them."""
        owners = controller_owner_keys(owner_kind)

        def on_add(obj: Obj) -> None:
            for key in owners(obj):
                if created is not None:
                    created(key, obj)
                self.enqueue(key)

        def on_update(old: Obj, new: Obj) -> None:
            self._enqueue_all(dict.fromkeys([*owners(old), *owners(new)]))

        def on_delete(obj: Obj) -> None:
            for key in owners(obj):
                if deleted is not None:
                    deleted(key, obj)
                self.enqueue(key)

        return informer.add_event_handler(on_add=on_add, on_update=on_update, on_delete=on_delete)
    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def _enqueue_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.queue.add(key)

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._threads or self._stopping.is_set():
            raise RuntimeError(f"controller {self.name} is running or was stopped; make a new one")
        for informer in self._owned:
            informer.start()
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"controller-{self.name}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the workers (a reconcile in progress is let finish) and owned informers;
        True when every thread ended within timeout."""
        self._stopping.set()
        self.queue.shut_down()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stopped = not any(thread.is_alive() for thread in self._threads)
        if not stopped:
            log.warning("controller %s: workers still running after %.1fs", self.name, timeout)
        for informer in self._owned:
            stopped = informer.stop(max(0.0, deadline - time.monotonic())) and stopped
        return stopped

    def has_synced(self) -> bool:
        return all(informer.has_synced() for informer in {*self._owned, *self._watched})

    # --- workers ----------------------------------------------------------------------

    def _work(self) -> None:
        # Acting on a half-filled cache would look like missing objects: wait for it.
        while not self.has_synced():
            if self._stopping.wait(_POLL):
                return
        while True:
            key, shutdown = self.queue.get()
            if shutdown or key is None:
                return
            try:
                if self._await_leadership():
                    self._process(key)
            finally:
                self.queue.done(key)

    def _await_leadership(self) -> bool:
        """False when stopping first. The key stays held meanwhile, so no other worker
        spins on it, and changes to it are kept for after."""
        while self._leader is not None and not self._leader.is_leader():
            if self._stopping.is_set():
                return False
            if not self._leader.wait_for_leadership(_POLL):
                # Also reached at once when the elector still says leading but its term
                # lapsed (it settles that at its next retry): pause rather than spin.
                self._stopping.wait(_POLL / 10)
        return not self._stopping.is_set()

    def _process(self, key: str) -> None:
        try:
            again = self._reconcile(key)
        except Exception as error:
            log.warning("controller %s: reconciling %s failed (retry %d): %s",
                        self.name, key, self.queue.num_requeues(key) + 1, error)
            log.debug("controller %s: reconcile traceback for %s", self.name, key, exc_info=True)
            self.queue.add_rate_limited(key)
            return
        self.queue.forget(key)
        if again is not None:
            self.queue.add_after(key, again)
