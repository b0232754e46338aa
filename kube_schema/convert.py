"""OpenAPI v3 (Kubernetes dialect) -> JSON Schema 2020-12, for the jsonschema library.

Kubernetes schemas use OpenAPI 3.0 spellings that JSON Schema reads differently:
``nullable``, boolean ``exclusiveMinimum``/``exclusiveMaximum`` and the
``x-kubernetes-int-or-string`` extension. Everything else carries over as is;
``x-kubernetes-*`` extensions that only affect storage or pruning are dropped here.
"""

from __future__ import annotations

from typing import Any

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_SINGLE = ("not", "items")
_DROPPED = ("description", "example", "externalDocs", "default", "nullable", "format")


def to_json_schema(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _DROPPED:
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [to_json_schema(sub) for sub in value]
        elif key in _SCHEMA_SINGLE or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    _convert_exclusive(out, "exclusiveMinimum", "minimum")
    _convert_exclusive(out, "exclusiveMaximum", "maximum")
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
        # The int-or-string marker is often spelled anyOf[integer, string]: redundant now.
        out.pop("anyOf", None)
    if node.get("nullable"):
        _allow_null(out)
    return out


def _convert_exclusive(out: dict[str, Any], exclusive: str, bound: str) -> None:
    if isinstance(out.get(exclusive), bool):
        if out.pop(exclusive) and bound in out:
            out[exclusive] = out.pop(bound)


def _allow_null(out: dict[str, Any]) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
