"""RFC 6902 JSON patches from an object and its mutated copy.

A minimal diff (not upstream's wholesale replace of /spec and /metadata) so another
mutating webhook's changes in other fields survive ours, and so the patch reads as the
list of defaults that were applied.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
_ABSENT = object()


def _token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def diff(before: Any, after: Any, path: str = "") -> list[Obj]:
    """Operations turning before into after. Objects are compared key by key; lists and
    scalars are replaced whole, because positional list patches break when another
    webhook reorders or inserts items."""
    if isinstance(before, dict) and isinstance(after, dict):
        operations: list[Obj] = []
        for key in before:
            if key not in after:
                operations.append({"op": "remove", "path": f"{path}/{_token(key)}"})
        for key, value in after.items():
            child = f"{path}/{_token(key)}"
            if key not in before:
                operations.append({"op": "add", "path": child, "value": value})
            else:
                operations.extend(diff(before[key], value, child))
        return operations
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path, "value": after}]
