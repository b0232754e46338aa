"""What preparation hands to the domain builder: how libvirt must attach one volume."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DiskFormat = Literal["raw", "qcow2"]
# "block" only for real block devices: libvirt needs <disk type='block'> and <source dev=...>
# for those, and <disk type='file'> with <source file=...> for everything else.
DiskType = Literal["file", "block"]
# "cdrom" marks a read-only ISO image that a CD-ROM device can present; any disk can
# still be attached as a plain disk, so this is a hint for defaults, not a rule.
DeviceHint = Literal["disk", "cdrom"]


@dataclass(frozen=True)
class PreparedDisk:
    name: str
    path: Path
    format: DiskFormat
    type: DiskType
    read_only: bool
    device_hint: DeviceHint = "disk"
    # The read-only image under a qcow2 overlay (containerDisk, ephemeral). The overlay's
    # header already names it; it is here so callers can label, lock or report it.
    backing: Path | None = None
    # hostDisk.shared: the image may be opened by more than one guest (e.g. during migration).
    shared: bool = False
