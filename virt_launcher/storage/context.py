"""What the launcher knows about its pod that the VMI spec does not say.

The spec names claims, images, ConfigMaps and Secrets; where those ended up on this
node (mount points, the image store, the objects' contents) is the launcher's
knowledge, handed in here so storage preparation never talks to the API server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

VolumeMode = Literal["Filesystem", "Block"]


@dataclass(frozen=True)
class ClaimMount:
    """One PersistentVolumeClaim as the launcher's pod sees it.

    path is the mount directory for Filesystem claims and the device (or the file
    standing in for one) for Block claims. capacity_bytes is the claim's capacity; it
    sizes disk.img when a Filesystem claim does not have one yet.
    """

    path: Path
    volume_mode: VolumeMode = "Filesystem"
    capacity_bytes: int | None = None
    # The claim is mounted read-only (e.g. ReadOnlyMany): the disk is read-only whatever
    # the VMI asks, and disk.img is never created on it.
    read_only: bool = False


@dataclass(frozen=True)
class StorageContext:
    # claimName -> where the claim is mounted.
    claims: Mapping[str, ClaimMount] = field(default_factory=dict)
    # An OCI image layout holding containerDisk images.
    image_store: Path | None = None
    # Where containerDisk images are unpacked, one directory per manifest digest. Shared
    # by every VMI on the node, so a base image is unpacked once and never written.
    image_cache: Path | None = None
    # Resolved objects by name, as the API returns them (data, binaryData; a Secret's
    # data base64-encoded as Kubernetes stores it).
    config_maps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # hostDisk paths must lie below one of these directories; empty means no hostDisk.
    host_disk_bases: Sequence[Path] = ()
