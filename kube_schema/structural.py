"""Is a schema structural? The rules apiextensions.k8s.io/v1 enforces on CRDs.

A structural schema pins down the shape of every stored field, which is what makes
pruning, defaulting and server-side apply possible. We check our own CRDs with this,
and the embedded API server refuses non-structural CRDs with it.
"""

from __future__ import annotations

from typing import Any

from kube_schema.paths import field_path

_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
# Inside a junctor only value validations are allowed, never shape.
_FORBIDDEN_IN_JUNCTOR = ("type", "description", "default", "additionalProperties", "nullable",
                         "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                         "x-kubernetes-int-or-string")


def structural_violations(schema: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    _check(schema, [], problems, root=True)
    return problems


def _where(path: list[str | int]) -> str:
    return field_path(path) if path else "<root>"


def _check(node: dict[str, Any], path: list[str | int], problems: list[str], root: bool = False) -> None:
    where = _where(path)
    int_or_string = node.get("x-kubernetes-int-or-string", False)
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if not node.get("type") and not int_or_string and not preserve:
        problems.append(f"{where}.type: Required value: must not be empty for specified fields")
    if node.get("properties") and isinstance(node.get("additionalProperties"), dict):
        problems.append(f"{where}: Forbidden: additionalProperties and properties are mutually exclusive")
    if node.get("additionalProperties") is False:
        problems.append(f"{where}.additionalProperties: Forbidden: must not be false")
    if int_or_string and node.get("type"):
        problems.append(f"{where}.type: Forbidden: must be empty with x-kubernetes-int-or-string")
    if root:
        _check_root_metadata(node, problems)
    for name, sub in (node.get("properties") or {}).items():
        _check(sub, [*path, name], problems)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _check(node[key], [*path, key], problems)
    for junctor in _JUNCTORS:
        subs = node.get(junctor)
        for index, sub in enumerate(subs if isinstance(subs, list) else [subs] if subs else []):
            _check_junctor(sub, [*path, f"{junctor}[{index}]"], problems)


def _check_junctor(node: dict[str, Any], path: list[str | int], problems: list[str]) -> None:
    for key in _FORBIDDEN_IN_JUNCTOR:
        if key in node and not (key == "type" and _is_int_or_string_branch(node)):
            problems.append(f"{_where(path)}.{key}: Forbidden: must not be used inside {path[-1]}")
    for name, sub in (node.get("properties") or {}).items():
        _check_junctor(sub, [*path, name], problems)


def _is_int_or_string_branch(node: dict[str, Any]) -> bool:
    # The one shape allowed inside anyOf: the int-or-string spelling.
    return node.get("type") in ("integer", "string") and len(node) == 1


def _check_root_metadata(node: dict[str, Any], problems: list[str]) -> None:
    metadata = (node.get("properties") or {}).get("metadata")
    if not metadata:
        return
    allowed = {"name", "generateName"}
    extra = set(metadata.get("properties") or {}) - allowed
    if extra or set(metadata) - {"type", "properties"}:
        problems.append("metadata: Forbidden: must not specify anything other than name and generateName")
