"""The launcher's storage context: where its pod's claims are, what its ConfigMaps and
Secrets hold, and where containerDisk images come from (a JSON file the pod carries)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.domain_manager import PrepareDisks
from virt_launcher.storage import ClaimMount, PreparedDisk, StorageContext, prepare_volumes

DEFAULT_IMAGE_CACHE = Path("/var/cache/kubevirt-py/images")


def load_context(path: Path | None, image_store: Path | None, work_dir: Path) -> StorageContext:
    """Read the context file; its errors name the key that is wrong."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(f"--context {path}: {error}") from None
    claims = {}
    for name, claim in (data.get("claims") or {}).items():
        try:
            claims[name] = ClaimMount(path=Path(claim["path"]), volume_mode=claim.get("volumeMode", "Filesystem"),
                                      capacity_bytes=claim.get("capacityBytes"),
                                      read_only=bool(claim.get("readOnly", False)))
        except (KeyError, TypeError) as error:
            raise SystemExit(f"--context {path}: claims.{name}: missing or invalid {error}") from None
    return StorageContext(
        claims=claims, image_store=image_store,
        image_cache=Path(data.get("imageCache") or DEFAULT_IMAGE_CACHE),
        config_maps=data.get("configMaps") or {}, secrets=data.get("secrets") or {},
        host_disk_bases=[Path(p) for p in data.get("hostDiskBases") or []])


def disk_preparer(work_dir: Path, context: StorageContext) -> PrepareDisks:
    def prepare(vmi: dict[str, Any]) -> Mapping[str, PreparedDisk]:
        return prepare_volumes(vmi, work_dir / "disks", context)

    return prepare
