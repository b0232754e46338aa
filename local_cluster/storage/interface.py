"""The storage contract the API server needs, as kube-apiserver needs it from etcd.

Keys are strings such as ``/registry/pods/default/web-0``; values are the JSON of
the object. Every write returns the store's new revision, which the API server
exposes as ``metadata.resourceVersion``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    # For PUT: the new value. For DELETE: the key, the deletion revision as
    # mod_revision and the last value before deletion as value.
    kv: KeyValue
    # The value before this event; None for a creation.
    prev: KeyValue | None


@dataclass(frozen=True)
class WatchBatch:
    events: list[WatchEvent]
    # The store revision this batch brings the watcher up to. A batch with no
    # events is a progress notification (the API server turns it into a BOOKMARK).
    revision: int


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"{key} already exists")
        self.key = key


class KeyNotFound(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"{key} not found")
        self.key = key


class RevisionConflict(StoreError):
    """An update or delete guarded on a mod revision that is no longer current."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"{key} was modified (now at revision {current.mod_revision if current else 'deleted'})")
        self.key = key
        self.current = current


class Compacted(StoreError):
    """The requested revision is older than the store's compaction point."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} has been compacted (oldest available: {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class StoreUnavailable(StoreError):
    """The backing store cannot be reached."""


class Store(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str = "") -> tuple[list[KeyValue], int, bool]:
        """Keys under ``prefix`` in key order: (items, header revision, more remain).

        ``revision`` > 0 reads at that revision (Compacted if too old); ``limit`` > 0
        returns at most that many items; ``start_after`` resumes a paginated list."""
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Write only if absent (KeyExists otherwise); returns the new revision."""
        ...

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> int:
        """Write only if the key's mod revision is still ``expected_mod_revision``
        (KeyNotFound if absent, RevisionConflict if changed); returns the new revision."""
        ...

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        """Delete, guarded on the mod revision when it is > 0. Returns the deleted value with
        mod_revision set to the deletion's revision."""
        ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchBatch]:
        """Events under ``prefix`` from ``start_revision`` (inclusive) on, in revision order,
        with periodic progress batches. Raises Compacted when ``start_revision`` is too old.
        Ends (with StoreUnavailable) if the store goes away."""
        ...

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...

    async def close(self) -> None: ...
