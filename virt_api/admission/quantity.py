"""Kubernetes resource quantities ("128Mi", "0.5", 2) as exact numbers, never raising."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Any

from kube_client.quantity import parse_quantity


@dataclass(frozen=True)
class Quantity:
    """A field's quantity: absent (value None, valid), parsed, or unparseable (valid False)."""

    value: Decimal | None = None
    valid: bool = True

    @property
    def present(self) -> bool:
        return self.value is not None


def read_quantity(raw: Any) -> Quantity:
    if raw is None:
        return Quantity()
    try:
        # Refuses booleans, other types, NaN and infinities as well as malformed strings.
        return Quantity(parse_quantity(raw))
    except ValueError:
        return Quantity(valid=False)


# Counts derived from quantities (CPU sockets) are uint32 upstream; clamping also keeps
# "1e999999999" from turning into an integer with a billion digits.
_MAX_UNITS = 2**32 - 1


def whole_units(value: Decimal) -> int:
    """Rounded away from zero to a whole unit, as Kubernetes' Quantity.Value() does (100m CPU -> 1)."""
    if value >= _MAX_UNITS:
        return _MAX_UNITS
    if value <= -_MAX_UNITS:
        return -_MAX_UNITS
    return int(value.to_integral_value(rounding=ROUND_UP))
