"""A thread-safe local copy of objects, keyed by namespace/name, with secondary indexes.

Controllers ask questions such as "which pods belong to this VMI" or "which VMIs run
on this node" on every reconcile; scanning the whole copy each time would grow with
the cluster, so each named index maps a value to the keys of the objects that have
it, kept current on every write. An index function returns every value an object is
filed under (none, one or several: a pod is filed under each of its owners).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from kube_client.rawapi import object_key

Obj = dict[str, Any]
log = logging.getLogger(__name__)
IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"


def namespace_index(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


def label_index(label: str) -> IndexFunc:
    """Files objects under the value of one label (objects without it are not filed)."""
    def index(obj: Obj) -> list[str]:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return [str(labels[label])] if label in labels else []
    return index


def owner_uid_index(obj: Obj) -> list[str]:
    return [str(ref["uid"]) for ref in (obj.get("metadata") or {}).get("ownerReferences") or [] if ref.get("uid")]


def controller_uid_index(obj: Obj) -> list[str]:
    """Only the managing owner: adoption and orphaning are decided by it alone."""
    return [str(ref["uid"]) for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
            if ref.get("uid") and ref.get("controller")]


def node_name_index(obj: Obj) -> list[str]:
    """Pods carry the node in spec.nodeName; VMIs in status.nodeName."""
    node = (obj.get("spec") or {}).get("nodeName") or (obj.get("status") or {}).get("nodeName")
    return [str(node)] if node else []


class IndexedStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Obj] = {}
        self._funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        # index name -> value -> keys
        self._indexes: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        # index name -> key -> the values it is filed under now, so a write can unfile it
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {NAMESPACE_INDEX: {}}

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Index names are unique; an index added late covers the objects already held."""
        with self._lock:
            if name in self._funcs:
                raise ValueError(f"index {name!r} already exists")
            self._funcs[name] = func
            self._indexes[name] = {}
            self._filed[name] = {}
            for key, obj in self._items.items():
                self._file(name, key, obj)

    def put(self, obj: Obj) -> Obj | None:
        """Store obj under its key; returns what it replaced."""
        key = object_key(obj)
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            for name in self._funcs:
                self._unfile(name, key)
                self._file(name, key, obj)
            return old

    def remove(self, obj: Obj) -> Obj | None:
        key = object_key(obj)
        with self._lock:
            old = self._items.pop(key, None)
            for name in self._funcs:
                self._unfile(name, key)
            return old

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def list(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            with self._lock:
                return list(self._items.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, name: str, value: str) -> list[Obj]:
        with self._lock:
            if name not in self._indexes:
                raise KeyError(f"no index named {name!r}")
            return [self._items[key] for key in sorted(self._indexes[name].get(value, ()))]

    def index_keys(self, name: str, value: str) -> list[str]:
        with self._lock:
            if name not in self._indexes:
                raise KeyError(f"no index named {name!r}")
            return sorted(self._indexes[name].get(value, ()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # --- under the lock ---------------------------------------------------------------

    def _file(self, name: str, key: str, obj: Obj) -> None:
        try:
            values = tuple(dict.fromkeys(str(value) for value in self._funcs[name](obj)))
        except Exception:  # one bad index function must not keep the object out of the copy
            log.exception("index %s failed on %s", name, key)
            return
        if not values:
            return
        self._filed[name][key] = values
        index = self._indexes[name]
        for value in values:
            index.setdefault(value, set()).add(key)

    def _unfile(self, name: str, key: str) -> None:
        index = self._indexes[name]
        for value in self._filed[name].pop(key, ()):
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]  # values come and go (node names, uids); do not keep empty sets
