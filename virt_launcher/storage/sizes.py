"""Disk sizes from Kubernetes quantities ("10Gi", "512M")."""

from __future__ import annotations

import math

from kube_client.quantity import exact_quantity
from virt_launcher.storage.errors import StorageError

# A guest sees a disk in whole 512-byte sectors; a tail shorter than a sector would be
# invisible to it, so sizes are rounded down (never up: up could exceed what was asked
# for, or what the claim holds).
SECTOR = 512


def align_down(size: int, unit: int = SECTOR) -> int:
    return size - size % unit


def quantity_bytes(value: object, field: str) -> int:
    """A positive disk size in bytes, whole sectors, from a quantity in the spec."""
    if value is None or value == "":
        raise StorageError(field, "a size is required")
    try:
        amount = exact_quantity(value)
    except (ValueError, ZeroDivisionError):
        raise StorageError(field, f"{value!r} is not a quantity") from None
    size = align_down(math.floor(amount))
    if size <= 0:
        raise StorageError(field, f"{value!r} is smaller than one {SECTOR}-byte sector")
    return size
