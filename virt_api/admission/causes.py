"""FieldError constructors with the reasons Kubernetes uses, so checks read as prose.

kube_schema's FieldError renders the message the way kube-apiserver does
("spec.x: Invalid value: 3: must be ...") and becomes one status.details.causes entry.
"""

from __future__ import annotations

import re
from typing import Any

from kube_schema.errors import DUPLICATE, FORBIDDEN, INVALID, NOT_SUPPORTED, REQUIRED, TOO_LONG, TOO_MANY, FieldError

# Upstream caps every device and volume list so one object cannot make admission (and
# every component after it) iterate without bound.
MAX_LIST_LENGTH = 256
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Serial numbers go verbatim into libvirt XML and SMBIOS tables.
SERIAL = re.compile(r"^[A-Za-z0-9_.+-]+$")
MAX_SERIAL_LENGTH = 256
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(field, INVALID, detail, value)


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(field, REQUIRED, detail)


def duplicate(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(field, DUPLICATE, detail, value)


def not_supported(field: str, value: Any, supported: tuple[str, ...] | list[str], detail: str = "") -> FieldError:
    listed = "supported values: " + ", ".join(f'"{s}"' for s in supported)
    return FieldError(field, NOT_SUPPORTED, f"{detail}; {listed}" if detail else listed, value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(field, FORBIDDEN, detail)


def too_long(field: str, limit: int, detail: str = "") -> FieldError:
    return FieldError(field, TOO_LONG, detail or f"may not be longer than {limit}")


def too_many(field: str, count: int, limit: int = MAX_LIST_LENGTH) -> FieldError:
    return FieldError(field, TOO_MANY, f"has {count} items, must have at most {limit}")


def dns_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not DNS1123_LABEL.fullmatch(value):
        return ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character")
    return None


def dns_subdomain_problem(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not DNS1123_SUBDOMAIN.fullmatch(value):
        return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character")
    return None


def serial_errors(field: str, value: Any) -> list[FieldError]:
    if value in (None, ""):
        return []
    if not isinstance(value, str) or not SERIAL.fullmatch(value):
        return [invalid(field, value, "may only contain A-Z, a-z, 0-9, '_', '.', '+' and '-'")]
    if len(value) > MAX_SERIAL_LENGTH:
        return [too_long(field, MAX_SERIAL_LENGTH)]
    return []
