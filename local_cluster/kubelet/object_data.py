"""The key/value payload of ConfigMaps and Secrets as bytes, decoded the way the
API encodes them: ConfigMap data is text and binaryData base64; Secret data is
base64, and stringData (write-only in the API, but present on objects that never
went through it) is text that wins over data."""

from __future__ import annotations

import base64
import binascii
from typing import Any


class ObjectDataError(ValueError):
    pass


def _decode(kind: str, name: str, key: str, value: object) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise ObjectDataError(f"{kind} {name!r} key {key!r} is not valid base64") from None


def config_map_data(config_map: dict[str, Any]) -> dict[str, bytes]:
    name = (config_map.get("metadata") or {}).get("name", "")
    data = {k: str(v).encode() for k, v in (config_map.get("data") or {}).items()}
    for key, value in (config_map.get("binaryData") or {}).items():
        data[key] = _decode("configmap", name, key, value)
    return data


def secret_data(secret: dict[str, Any]) -> dict[str, bytes]:
    name = (secret.get("metadata") or {}).get("name", "")
    data = {k: _decode("secret", name, k, v) for k, v in (secret.get("data") or {}).items()}
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = str(value).encode()
    return data
