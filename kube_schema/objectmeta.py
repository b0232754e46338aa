"""ObjectMeta rules kube-apiserver enforces on every object, whatever its schema."""

from __future__ import annotations

import re
from typing import Any

from kube_schema.errors import INVALID, REQUIRED, TOO_LONG, FieldError

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_HELP = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                  "'.', and must start and end with an alphanumeric character (e.g. 'example.com')")
LABEL_HELP = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name')")


def subdomain_errors(field: str, value: str) -> list[FieldError]:
    if len(value) > 253:
        return [FieldError(field, TOO_LONG, "must be no more than 253 characters")]
    if not _DNS1123_SUBDOMAIN.match(value):
        return [FieldError(field, INVALID, SUBDOMAIN_HELP, value)]
    return []


def path_segment_errors(field: str, value: str) -> list[FieldError]:
    """Names that only have to survive as one URL path segment (RBAC's "system:..." roles)."""
    if value in (".", ".."):
        return [FieldError(field, INVALID, f"may not be '{value}'", value)]
    return [FieldError(field, INVALID, f"may not contain '{c}'", value) for c in ("/", "%") if c in value]


def label_errors(field: str, value: str) -> list[FieldError]:
    if len(value) > 63:
        return [FieldError(field, TOO_LONG, "must be no more than 63 characters")]
    if not _DNS1123_LABEL.match(value):
        return [FieldError(field, INVALID, LABEL_HELP, value)]
    return []


def metadata_errors(metadata: Any, *, namespaced: bool = True) -> list[FieldError]:
    if not isinstance(metadata, dict):
        return [FieldError("metadata", REQUIRED)]
    errors: list[FieldError] = []
    name = metadata.get("name")
    if not name and not metadata.get("generateName"):
        errors.append(FieldError("metadata.name", REQUIRED, "name or generateName is required"))
    elif isinstance(name, str) and name:
        errors += subdomain_errors("metadata.name", name)
    elif name:
        errors.append(FieldError("metadata.name", INVALID, "must be a string", name))
    namespace = metadata.get("namespace")
    if namespaced and namespace:
        errors += label_errors("metadata.namespace", namespace) if isinstance(namespace, str) else [
            FieldError("metadata.namespace", INVALID, "must be a string", namespace)]
    errors += _label_map_errors(metadata.get("labels"))
    errors += _annotation_errors(metadata.get("annotations"))
    return errors


def _label_map_errors(labels: Any) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [FieldError("metadata.labels", INVALID, "must be a map of strings", labels)]
    errors: list[FieldError] = []
    for key, value in labels.items():
        errors += qualified_name_errors("metadata.labels", key)
        if not isinstance(value, str):
            errors.append(FieldError(f"metadata.labels[{key}]", INVALID, "must be a string", value))
        elif len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append(FieldError("metadata.labels", INVALID,
                                     "a valid label must be an empty string or consist of alphanumeric characters, "
                                     "'-', '_' or '.', and must start and end with an alphanumeric character "
                                     "(at most 63 characters)", value))
    return errors


def _annotation_errors(annotations: Any) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [FieldError("metadata.annotations", INVALID, "must be a map of strings", annotations)]
    errors: list[FieldError] = []
    for key, value in annotations.items():
        errors += qualified_name_errors("metadata.annotations", key)
        if not isinstance(value, str):
            errors.append(FieldError(f"metadata.annotations[{key}]", INVALID, "must be a string", value))
    return errors


def qualified_name_errors(field: str, key: Any) -> list[FieldError]:
    """Label and annotation keys: an optional DNS subdomain prefix and a name."""
    if not isinstance(key, str) or not key:
        return [FieldError(field, INVALID, "name part must be non-empty", key)]
    prefix, _, name = key.rpartition("/")
    if prefix and subdomain_errors(field, prefix):
        return [FieldError(field, INVALID, "prefix part " + SUBDOMAIN_HELP, key)]
    if len(name) > 63 or not _LABEL_NAME.match(name):
        return [FieldError(field, INVALID, "name part must consist of alphanumeric characters, '-', '_' or '.', "
                                           "and must start and end with an alphanumeric character "
                                           "(at most 63 characters)", key)]
    return []
