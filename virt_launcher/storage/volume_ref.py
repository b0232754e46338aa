"""One entry of spec.volumes, validated enough to be used safely: its position (for
error fields), its name (for file names) and its single source."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from virt_launcher.storage.errors import StorageError

# Volume names become file names in the working directory; a DNS-1123 label cannot
# contain "/", cannot be "." or "..", and cannot start with "." (our temporary files do).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MAX_LABEL = 63


@dataclass(frozen=True)
class VolumeRef:
    index: int
    name: str
    kind: str  # the source key: "containerDisk", "hostDisk", ...
    source: Mapping[str, Any]

    def field(self, *parts: str) -> str:
        """The spec path of this volume's source, or of one of its fields."""
        return ".".join([f"spec.volumes[{self.index}]", self.kind, *parts])


def volume_field(index: int, *parts: str) -> str:
    return ".".join([f"spec.volumes[{index}]", *parts])


def validate_volume_name(name: object, index: int) -> str:
    if not isinstance(name, str) or len(name) > _MAX_LABEL or not _DNS_LABEL.match(name):
        raise StorageError(
            volume_field(index, "name"),
            f"{name!r} is not a valid volume name (lower-case letters, digits and '-', at most 63 characters)",
        )
    return name


def volume_sources(volume: Mapping[str, Any]) -> list[str]:
    """The source keys a volume sets; everything but "name" is a source."""
    return [key for key, value in volume.items() if key != "name" and value is not None]


def make_volume_ref(volume: object, index: int) -> VolumeRef:
    """One spec.volumes entry with a valid name and exactly one source, or a StorageError."""
    if not isinstance(volume, Mapping):
        raise StorageError(volume_field(index), "a volume must be an object")
    name = validate_volume_name(volume.get("name"), index)
    kinds = volume_sources(volume)
    if not kinds:
        raise StorageError(volume_field(index), f"volume {name!r} has no source")
    if len(kinds) > 1:
        listed = ", ".join(sorted(kinds))
        raise StorageError(volume_field(index), f"volume {name!r} sets more than one source: {listed}")
    kind = kinds[0]
    source = volume[kind]
    if not isinstance(source, Mapping):
        raise StorageError(volume_field(index, kind), "must be an object")
    return VolumeRef(index=index, name=name, kind=kind, source=source)
