"""Objects to and from their stored form."""

from __future__ import annotations

import json
from typing import Any

from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.storage.interface import KeyValue

Obj = dict[str, Any]


def encode(obj: Obj) -> bytes:
    stored = dict(obj)
    meta = dict(stored.get("metadata") or {})
    # resourceVersion is the store's revision, derived on every read, never stored.
    meta.pop("resourceVersion", None)
    stored["metadata"] = meta
    return json.dumps(stored, separators=(",", ":")).encode()


def decode(info: ResourceInfo, kv: KeyValue, revision: int | None = None) -> Obj:
    obj = json.loads(kv.value)
    # One stored shape serves every version (no conversion webhooks): report the one asked for.
    obj["apiVersion"] = info.api_version
    obj["kind"] = info.kind
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision if revision is None else revision)
    return obj


def storage_api_version(info: ResourceInfo) -> str:
    version = info.storage_version or info.version
    return f"{info.group}/{version}" if info.group else version
