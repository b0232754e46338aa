"""PersistentVolumeClaims as disks: finding a claim's mount and the image in it.

A Filesystem claim holds its disk as <mount>/disk.img (raw), as upstream lays it out;
a Block claim is the disk itself. The claim's contents are the user's, so a disk.img
that is a symlink is followed only while it stays inside the claim.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.context import ClaimMount, StorageContext
from virt_launcher.storage.disk import DiskType
from virt_launcher.storage.errors import StorageError

DISK_IMAGE = "disk.img"


def lookup_claim(claim: Mapping[str, Any], context: StorageContext, field: str) -> ClaimMount:
    """The mount of the claim a persistentVolumeClaim source names; field is that source's path."""
    name = claim.get("claimName")
    if not isinstance(name, str) or not name:
        raise StorageError(f"{field}.claimName", "a claim name is required")
    mount = context.claims.get(name)
    if mount is None:
        raise StorageError(f"{field}.claimName", f"claim {name!r} is not mounted in this launcher's pod")
    if mount.volume_mode not in ("Filesystem", "Block"):
        raise StorageError(f"{field}.claimName", f"claim {name!r} has unknown volume mode {mount.volume_mode!r}")
    return mount


def disk_image_in_claim(mount: Path, field: str) -> Path:
    """Where a Filesystem claim's disk.img is (existing or to be created), confined to the claim."""
    mount_real = Path(os.path.realpath(mount))
    if not mount_real.is_dir():
        raise StorageError(field, f"the claim's mount {mount} is not a directory")
    path = mount_real / DISK_IMAGE
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(mount_real) or target == mount_real:
            raise StorageError(field, f"{DISK_IMAGE} in the claim is a symlink leading out of the claim")
        path = target
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise StorageError(field, f"{DISK_IMAGE} in the claim is a dangling symlink") from None
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(field, f"{DISK_IMAGE} in the claim is not a regular file")
    return path


def block_device(path: Path, field: str) -> tuple[Path, DiskType]:
    """A Block claim's device; the local provisioner stands a sparse file in for one."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StorageError(field, f"the claim's device {path} does not exist") from None
    if stat.S_ISBLK(info.st_mode):
        return Path(os.path.realpath(path)), "block"
    if stat.S_ISREG(info.st_mode):
        return Path(os.path.realpath(path)), "file"
    raise StorageError(field, f"the claim's device {path} is neither a block device nor a file")
