"""Kubernetes resource quantities ("500m", "1Gi", "2e3"), parsed exactly.

The parsing is the official client's; this only hands the result over as a Fraction,
which the downward API's divisions keep exact."""

from __future__ import annotations

from fractions import Fraction

from kubernetes.utils import parse_quantity as _parse


def parse_quantity(value: object) -> Fraction:
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    return Fraction(_parse(value.strip() if isinstance(value, str) else value))
