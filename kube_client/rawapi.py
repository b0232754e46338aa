"""Official-client calls that hand back plain JSON dicts.

Components here reason about objects as the API serves them (camelCase dicts), so
every call asks the generated client for the raw response (_preload_content=False):
that skips model deserialization, which is slow and can fail on responses the
models do not expect (a binding answers with a Status, not a Binding).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

# Unary requests never take long; a hung connection must not stall a control loop.
REQUEST_TIMEOUT = (10.0, 30.0)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
    """Run one generated-client method and decode its JSON body ({} when empty)."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    response = method(*args, _preload_content=False, **kwargs)
    try:
        data = response.data
    finally:
        response.release_conn()
    if not data:
        return {}
    decoded = json.loads(data)
    return decoded if isinstance(decoded, dict) else {}


class CustomResource(Protocol):
    group: str
    version: str
    plural: str


def patch_status_of_version(custom: Any, resource: CustomResource, obj: Obj, status: Obj) -> Obj:
    """Merge ``status`` into the namespaced custom object's status, only if ``obj`` is still
    the version it was read at (409 otherwise, so a write made meanwhile is never
    overwritten); returns the object as written. ``custom``: a CustomObjectsApi."""
    meta = obj["metadata"]
    return call(custom.patch_namespaced_custom_object_status, resource.group, resource.version, meta["namespace"],
                resource.plural, meta["name"], {"metadata": {"resourceVersion": meta["resourceVersion"]},
                                                "status": status}, _content_type=MERGE_PATCH)


def status_code(error: BaseException) -> int:
    """The HTTP status of a failed call; 0 for transport errors."""
    return (error.status or 0) if isinstance(error, ApiException) else 0


def object_key(obj: Obj) -> str:
    """namespace/name for namespaced objects, name for cluster-scoped ones."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))
