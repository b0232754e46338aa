"""The contents of ConfigMaps and Secrets as bytes per key.

A Secret's data, and a ConfigMap's binaryData, are base64 as the API serves them;
ConfigMap data is text. Keys become file names on an ISO, so they are held to the
Kubernetes key rules here even though the API server should already have done so.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from virt_launcher.storage.errors import StorageError

_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def decode_base64(value: object, field: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise StorageError(field, f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise StorageError(field, f"{what} is not valid base64") from None


def _checked_key(key: object, field: str, kind: str, name: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key) or key in (".", "..") or key.startswith(".."):
        raise StorageError(field, f"{kind} {name!r} has key {key!r}, which cannot be a file name")
    return key


def secret_items(secret: Mapping[str, Any], field: str, name: str) -> dict[str, bytes]:
    items: dict[str, bytes] = {}
    for key, value in (secret.get("data") or {}).items():
        key = _checked_key(key, field, "Secret", name)
        items[key] = decode_base64(value, field, f"Secret {name!r} key {key!r}")
    # The API server folds stringData into data; a hand-built object may still carry it.
    for key, value in (secret.get("stringData") or {}).items():
        items[_checked_key(key, field, "Secret", name)] = str(value).encode()
    return items


def config_map_items(config_map: Mapping[str, Any], field: str, name: str) -> dict[str, bytes]:
    items: dict[str, bytes] = {}
    for key, value in (config_map.get("data") or {}).items():
        items[_checked_key(key, field, "ConfigMap", name)] = str(value).encode()
    for key, value in (config_map.get("binaryData") or {}).items():
        key = _checked_key(key, field, "ConfigMap", name)
        if key in items:
            raise StorageError(field, f"ConfigMap {name!r} has key {key!r} in both data and binaryData")
        items[key] = decode_base64(value, field, f"ConfigMap {name!r} binaryData key {key!r}")
    return items
