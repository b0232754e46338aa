"""ObjectMeta system fields: names, uids, timestamps, resource versions."""

from __future__ import annotations

import datetime
import secrets
import uuid
from typing import Any

from kube_client.timestamps import format_time, now
from local_cluster.apiserver.errors import ApiError

Obj = dict[str, Any]

# generateName suffix alphabet: no vowels or look-alikes, as Kubernetes uses.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def later(seconds: int) -> str:
    return format_time(now() + datetime.timedelta(seconds=seconds))


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


def metadata(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def name_of(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def with_resource_version(obj: Obj, revision: int) -> Obj:
    metadata(obj)["resourceVersion"] = str(revision)
    return obj


def parse_resource_version(text: Any, what: str = "resourceVersion") -> int:
    """A resourceVersion from a client: '' means 0 (unset); anything else must be a revision."""
    if text in (None, ""):
        return 0
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ApiError(400, "BadRequest", f"invalid {what} {text!r}: must be a number") from None
    if value < 0:
        raise ApiError(400, "BadRequest", f"invalid {what} {text!r}: must not be negative")
    return value
