"""The provisioner's data on the local disk: one directory or disk-image file per volume.

Everything lives under one root directory. Removal takes a path that came from a
PersistentVolume object, which anyone with API access can write, so it refuses
any path that does not name an entry strictly inside the root (after resolving
symlinks in its parent) or whose entry is itself a symlink.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class UnsafePath(ValueError):
    """A volume path the provisioner will not touch."""


class LocalVolumes:
    def __init__(self, root: Path) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def path_for(self, volume_name: str, namespace: str, claim_name: str) -> Path:
        # The claim's names are only there so a person looking at the disk knows whose data it is.
        return self.root / f"{volume_name}_{namespace}_{claim_name}"

    def create_directory(self, path: Path) -> None:
        target = self.contained(str(path))
        target.mkdir(exist_ok=True)
        # Pods run as any user; a volume they cannot write to is of no use to them.
        target.chmod(0o777)

    def create_disk_image(self, path: Path, size: int) -> None:
        """A sparse file of the requested size: it stands in for a block device."""
        target = self.contained(str(path))
        descriptor = os.open(target, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o660)
        try:
            # A retry after a crash finds the file already there: grow it, never cut data off.
            if os.fstat(descriptor).st_size < size:
                os.ftruncate(descriptor, size)
        finally:
            os.close(descriptor)

    def remove(self, path_text: str) -> None:
        target = self.contained(path_text)
        if target.is_symlink():
            raise UnsafePath(f"{path_text} is a symlink; refusing to remove it")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def contained(self, path_text: str) -> Path:
        """The path, checked to name an entry strictly inside the root."""
        if not path_text or not os.path.isabs(path_text):
            raise UnsafePath(f"{path_text!r} is not an absolute path")
        normalized = Path(os.path.normpath(path_text))
        if normalized.name in ("", ".", ".."):
            raise UnsafePath(f"{path_text!r} does not name an entry")
        parent = normalized.parent.resolve()
        if parent != self.root and self.root not in parent.parents:
            raise UnsafePath(f"{path_text} is outside the provisioner's root {self.root}")
        return parent / normalized.name
