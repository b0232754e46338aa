"""Throwaway qcow2 overlays over read-only bases (containerDisk, ephemeral)."""

from __future__ import annotations

import shutil
from pathlib import Path

from virt_launcher.storage.disk import DiskFormat
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.qemu_img import QemuImgError, create_overlay, image_info
from virt_launcher.storage.workdir import discard, publish, temporary_sibling


def ensure_overlay(overlay: Path, base: Path, base_format: DiskFormat, *, reuse: bool, field: str,
                   template: Path | None = None) -> None:
    """Make overlay a fresh qcow2 over base, or keep it when reuse allows and it fits.

    Keeping matters when preparation runs again for the same VMI: the guest may be
    running on the overlay, and a new one would throw its writes away. template: a
    fresh overlay over the same base (container_base), copied instead of made.
    """
    try:
        if reuse and overlay.exists() and _overlay_of(overlay, base):
            return
        temp = temporary_sibling(overlay)
        try:
            if template is None:
                create_overlay(temp, base, base_format)
            else:
                shutil.copyfile(template, temp)
            publish(temp, overlay)
        finally:
            discard(temp)
    except QemuImgError as exc:
        raise StorageError(field, f"cannot create an overlay over {base}: {exc}") from None
    except OSError as exc:
        raise StorageError(field, f"cannot copy the overlay over {base}: {exc.strerror}") from None


def _overlay_of(overlay: Path, base: Path) -> bool:
    try:
        info = image_info(overlay)
    except QemuImgError:
        return False  # unreadable: replace it
    return info.format == "qcow2" and info.backing_file == str(base)
