"""Field errors in the shape kube-apiserver returns them (Status causes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Reasons as Kubernetes spells them in StatusCause.reason.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
UNKNOWN = "FieldValueUnknownField"

_LABELS = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    DUPLICATE: "Duplicate value",
    FORBIDDEN: "Forbidden",
    UNKNOWN: "Unknown field",
}

# Reasons whose message shows the offending value, as Kubernetes does.
_SHOWS_VALUE = {INVALID, NOT_SUPPORTED, DUPLICATE}


def render_value(value: Any) -> str:
    """A value the way Kubernetes quotes it in messages: strings quoted, the rest as JSON."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else "[...]"
    return json.dumps(value)


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, e.g. ``spec.domain.cpu.cores``."""

    field: str
    reason: str
    detail: str = ""
    value: Any = None

    @property
    def message(self) -> str:
        text = f"{self.field}: {_LABELS.get(self.reason, self.reason)}"
        if self.reason in _SHOWS_VALUE:
            text += f": {render_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return self.message


def invalid_status(group: str, kind: str, name: str, errors: list[FieldError]) -> dict[str, Any]:
    """The 422 Invalid Status object kube-apiserver returns for a rejected object."""
    qualified = f"{kind}.{group}" if group else kind
    summary = ", ".join(e.message for e in errors)
    display = "<unknown>" if not name else name
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{qualified} "{display}" is invalid: [{summary}]' if len(errors) > 1
        else f'{qualified} "{display}" is invalid: {summary}',
        "reason": "Invalid",
        "details": {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [e.cause() for e in errors],
        },
        "code": 422,
    }
