"""Defensive readers for objects that arrive as arbitrary JSON.

Mutating webhooks run before the API server checks the object against the CRD schema,
and a malformed review can carry anything, so no admission code may assume a field has
the type the API promises. These readers turn a wrong type into "absent", which keeps
every check a plain function of well-typed values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]


def as_obj(value: Any) -> Obj:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """A JSON integer; booleans are not integers here although Python says they are."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def indexed_objs(value: Any) -> Iterator[tuple[int, Obj]]:
    """(index, item) for each object in a list; the index stays the item's place in the
    original list so field paths name the element the user wrote."""
    for index, item in enumerate(as_list(value)):
        if isinstance(item, dict):
            yield index, item


def dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]..., or None as soon as a step is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def str_map(value: Any) -> dict[str, str]:
    """A label-like map, keeping only string keys with string values."""
    return {k: v for k, v in as_obj(value).items() if isinstance(k, str) and isinstance(v, str)}
