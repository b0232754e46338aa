"""Boot order: a positive number, unique across disks and interfaces, because firmware
boots devices in that order and a tie has no meaning."""

from __future__ import annotations

from typing import Any

from kube_schema.errors import FieldError
from virt_api.admission.causes import duplicate, invalid
from virt_api.admission.shape import as_int, dig, indexed_objs

Obj = dict[str, Any]


def check_boot_order(spec: Obj, base: str) -> list[FieldError]:
    errors: list[FieldError] = []
    first: dict[int, str] = {}
    for kind in ("disks", "interfaces"):
        for index, device in indexed_objs(dig(spec, "domain", "devices", kind)):
            raw = device.get("bootOrder")
            if raw is None:
                continue
            field = f"{base}.domain.devices.{kind}[{index}].bootOrder"
            order = as_int(raw)
            if order is None or order < 1:
                errors.append(invalid(field, raw, "must be a whole number of at least 1"))
            elif order in first:
                errors.append(duplicate(field, order, f"{first[order]} already boots at this position"))
            else:
                first[order] = field
    return errors
