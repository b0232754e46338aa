"""Kubernetes field paths: ``spec.domain.devices.disks[0].name``."""

from __future__ import annotations

from collections.abc import Iterable


def field_path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = part
    return out or "<root>"
