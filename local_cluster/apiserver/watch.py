"""Watch: a list-then-follow or resume-from-resourceVersion stream of object events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from local_cluster.apiserver.codec import decode
from local_cluster.apiserver.errors import expired
from local_cluster.apiserver.meta import parse_resource_version
from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.apiserver.selectors import FieldSelector, LabelSelector
from local_cluster.storage.interface import Compacted, Store, WatchEvent

Obj = dict[str, Any]


def _selected(obj: Obj, labels: LabelSelector | None, fields: FieldSelector | None) -> bool:
    if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels")):
        return False
    return fields is None or fields.matches(obj)


async def watch_events(store: Store, info: ResourceInfo, namespace: str, *, labels: LabelSelector | None,
                       fields: FieldSelector | None, resource_version: str,
                       bookmarks: bool) -> AsyncIterator[Obj]:
    """Watch events as kube-apiserver sends them; ends with an ERROR event (410) when
    ``resource_version`` is older than the store keeps."""
    revision = parse_resource_version(resource_version)
    prefix = info.list_prefix(namespace)
    if revision == 0:
        # No resourceVersion: the current state as synthetic ADDED events, then changes.
        kvs, revision, _ = await store.list(prefix)
        for kv in kvs:
            obj = decode(info, kv)
            if _selected(obj, labels, fields):
                yield {"type": "ADDED", "object": obj}
    last_sent = revision
    try:
        async for batch in store.watch(prefix, revision + 1):
            for event in batch.events:
                out = _transform(info, event, labels, fields)
                if out is not None:
                    yield out
            if not batch.events and bookmarks and batch.revision > last_sent:
                yield _bookmark(info, batch.revision)
            last_sent = max(last_sent, batch.revision)
    except Compacted as error:
        status = expired(f"too old resource version: {revision} ({error.compact_revision})").status()
        yield {"type": "ERROR", "object": status}


def _transform(info: ResourceInfo, event: WatchEvent, labels: LabelSelector | None,
               fields: FieldSelector | None) -> Obj | None:
    if event.type == "DELETE":
        gone = decode(info, event.kv)
        return {"type": "DELETED", "object": gone} if _selected(gone, labels, fields) else None
    new = decode(info, event.kv)
    new_ok = _selected(new, labels, fields)
    filtered = labels is not None or fields is not None
    old_ok = event.prev is not None and (not filtered or _selected(decode(info, event.prev), labels, fields))
    if new_ok:
        return {"type": "MODIFIED" if old_ok else "ADDED", "object": new}
    if old_ok:
        # It no longer matches the watcher's selectors: to that watcher it is gone.
        return {"type": "DELETED", "object": new}
    return None


def _bookmark(info: ResourceInfo, revision: int) -> Obj:
    return {"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version,
                                           "metadata": {"resourceVersion": str(revision)}}}
