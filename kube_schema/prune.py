"""Drop fields a structural schema does not declare, as kube-apiserver does.

Pruning is what makes a schema the contract of what is stored: a field that is not
declared (and not under ``x-kubernetes-preserve-unknown-fields``) never reaches etcd.
The pruned paths are returned so a strict client can be told instead of ignored.
"""

from __future__ import annotations

from typing import Any

from kube_schema.paths import field_path

# Fields of an embedded resource (and of a CR root) that exist whatever the schema says.
_TYPE_META = ("apiVersion", "kind", "metadata")


def prune(obj: Any, schema: dict[str, Any], *, root: bool = True) -> list[str]:
    """Prune ``obj`` in place; return the field paths that were removed."""
    removed: list[str] = []
    _prune(obj, schema, [], removed, keep_type_meta=root)
    return removed


def _prune(obj: Any, schema: dict[str, Any], path: list[str | int], removed: list[str],
           keep_type_meta: bool = False) -> None:
    if isinstance(obj, dict):
        _prune_object(obj, schema, path, removed, keep_type_meta or schema.get("x-kubernetes-embedded-resource", False))
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(obj):
                _prune(item, items, [*path, index], removed)


def _prune_object(obj: dict[str, Any], schema: dict[str, Any], path: list[str | int], removed: list[str],
                  keep_type_meta: bool) -> None:
    properties: dict[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    for key in list(obj):
        sub_path = [*path, key]
        if keep_type_meta and key in _TYPE_META:
            # ObjectMeta follows its own rules (kube_schema.objectmeta), not the schema.
            continue
        if key in properties:
            _prune(obj[key], properties[key], sub_path, removed)
        elif isinstance(additional, dict):
            _prune(obj[key], additional, sub_path, removed)
        elif not preserve and additional is not True:
            removed.append(field_path(sub_path))
            del obj[key]
