"""Validate an object against a structural schema, reporting Kubernetes field errors."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from kube_schema.convert import to_json_schema
from kube_schema.errors import INVALID, NOT_SUPPORTED, REQUIRED, TOO_LONG, TOO_MANY, FieldError, render_value
from kube_schema.paths import field_path

_TYPE_NAMES = {("integer", "string"): "integer-or-string"}


def _type_name(bound: str | list[str]) -> str:
    if isinstance(bound, str):
        return bound
    kinds = tuple(sorted(b for b in bound if b != "null"))
    return _TYPE_NAMES.get(kinds, "/".join(kinds))


class SchemaValidator:
    """Compiled once per schema; ``errors(obj)`` lists every violation, sorted by path."""

    def __init__(self, openapi_schema: dict[str, Any]) -> None:
        self._validator = Draft202012Validator(to_json_schema(openapi_schema))

    def errors(self, obj: Any, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
        found: list[FieldError] = []
        for error in self._validator.iter_errors(obj):
            found.extend(_field_errors(error, prefix))
        unique = {(e.field, e.reason, e.detail): e for e in found}
        return sorted(unique.values(), key=lambda e: (e.field, e.reason, e.detail))


def _field_errors(error: ValidationError, prefix: tuple[str | int, ...]) -> list[FieldError]:
    parts = (*prefix, *error.absolute_path)
    path = field_path(parts)
    kind = error.validator
    value = error.instance
    bound = error.validator_value
    if kind == "required":
        present = value if isinstance(value, dict) else {}
        return [FieldError(field_path((*parts, name)), REQUIRED) for name in bound if name not in present]
    if kind == "type":
        names = _type_name(bound)
        return [FieldError(path, INVALID, f"{path} in body must be of type {names}: {render_value(value)}", value)]
    if kind == "enum":
        allowed = ", ".join(render_value(v) for v in bound if v is not None)
        return [FieldError(path, NOT_SUPPORTED, f"supported values: {allowed}", value)]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {
            "minimum": "greater than or equal to", "exclusiveMinimum": "greater than",
            "maximum": "less than or equal to", "exclusiveMaximum": "less than",
        }[kind]
        return [FieldError(path, INVALID, f"{path} in body should be {relation} {bound}", value)]
    if kind == "pattern":
        return [FieldError(path, INVALID, f"{path} in body should match '{bound}'", value)]
    if kind == "maxLength":
        return [FieldError(path, TOO_LONG, f"may not be more than {bound} bytes")]
    if kind == "minLength":
        return [FieldError(path, INVALID, f"{path} in body should be at least {bound} chars long", value)]
    if kind == "maxItems":
        return [FieldError(path, TOO_MANY, f"must have at most {bound} items")]
    if kind == "minItems":
        return [FieldError(path, INVALID, f"{path} in body should have at least {bound} items", value)]
    if kind == "uniqueItems":
        return [FieldError(path, INVALID, f"{path} in body shouldn't contain duplicates", value)]
    if kind in ("maxProperties", "minProperties"):
        word = "at most" if kind == "maxProperties" else "at least"
        return [FieldError(path, INVALID, f"{path} in body should have {word} {bound} properties", value)]
    if kind in ("oneOf", "anyOf", "allOf", "not"):
        return [FieldError(path, INVALID, f"{path} in body must validate {kind}: {error.message}", value)]
    return [FieldError(path, INVALID, error.message, value)]
