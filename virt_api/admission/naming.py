"""Named list items (disks, volumes, interfaces, networks): names must be given and unique,
because every other check and component pairs items across lists by name."""

from __future__ import annotations

from typing import Any

from kube_schema.errors import FieldError
from virt_api.admission.causes import duplicate, required
from virt_api.admission.shape import as_str, indexed_objs


def unique_names(items: Any, where: str, what: str) -> tuple[dict[str, int], list[FieldError]]:
    """Each name's first index, and a cause for every missing or repeated name."""
    first: dict[str, int] = {}
    errors: list[FieldError] = []
    for index, item in indexed_objs(items):
        name = as_str(item.get("name"))
        if not name:
            errors.append(required(f"{where}[{index}].name", f"every {what} needs a name"))
        elif name in first:
            errors.append(duplicate(f"{where}[{index}].name", name,
                                    f"{where}[{first[name]}] already uses this name; {what} names must be unique"))
        else:
            first[name] = index
    return first, errors
