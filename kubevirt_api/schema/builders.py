"""Constructors for structural OpenAPI v3 schema nodes."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# A Kubernetes resource.Quantity as a string ("128Mi", "1.5", "2e3") or an integer.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _described(node: Schema, description: str) -> Schema:
    if description:
        node["description"] = description
    return node


def string(description: str = "", *, enum: list[str] | None = None, pattern: str | None = None,
           fmt: str | None = None) -> Schema:
    node: Schema = {"type": "string"}
    if enum is not None:
        node["enum"] = enum
    if pattern is not None:
        node["pattern"] = pattern
    if fmt is not None:
        node["format"] = fmt
    return _described(node, description)


def integer(description: str = "", *, minimum: int | None = None, maximum: int | None = None,
            fmt: str = "int64") -> Schema:
    node: Schema = {"type": "integer", "format": fmt}
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    return _described(node, description)


def boolean(description: str = "") -> Schema:
    return _described({"type": "boolean"}, description)


def timestamp(description: str = "") -> Schema:
    return _described({"type": "string", "format": "date-time", "nullable": True}, description)


def quantity(description: str = "") -> Schema:
    return _described({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY_PATTERN,
        "x-kubernetes-int-or-string": True,
    }, description)


def obj(description: str = "", properties: dict[str, Schema] | None = None, *,
        required: list[str] | None = None, open_ended: bool = False) -> Schema:
    """An object with declared fields.

    ``open_ended`` keeps fields we do not declare instead of pruning them: used where
    upstream defines more fields than we implement, so that admission can refuse an
    unsupported feature by name instead of the API silently dropping it.
    """
    node: Schema = {"type": "object"}
    if properties:
        node["properties"] = properties
    if required:
        node["required"] = required
    if open_ended:
        node["x-kubernetes-preserve-unknown-fields"] = True
    return _described(node, description)


def marker(description: str = "") -> Schema:
    """An empty object whose presence is the value, e.g. ``masquerade: {}``."""
    return obj(description)


def free_form(description: str = "") -> Schema:
    """An object stored as given: Kubernetes types we pass through (affinity, probes)."""
    return obj(description, open_ended=True)


def array(items: Schema, description: str = "", *, min_items: int | None = None) -> Schema:
    node: Schema = {"type": "array", "items": items}
    if min_items is not None:
        node["minItems"] = min_items
    return _described(node, description)


def string_map(description: str = "") -> Schema:
    return _described({"type": "object", "additionalProperties": {"type": "string"}}, description)


def quantity_map(description: str = "") -> Schema:
    return _described({"type": "object", "additionalProperties": quantity()}, description)


def feature_state(description: str = "") -> Schema:
    return obj(description, {"enabled": boolean("Whether the feature is on; defaults to true when the object is present.")})
