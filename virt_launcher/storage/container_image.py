"""Finding a containerDisk's disk file: look the image up in the node's OCI store,
unpack it once per manifest digest into the shared cache, and pick the disk file in
it (the volume's `path`, or the one file under /disk).

The unpacked image is shared by every VMI using it, so it is made read-only here;
each VMI writes to its own overlay instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from oci_layout.store import ImageFormatError, ImageNotFound, find_image
from oci_layout.unpack import unpack_image
from oci_layout.rooted_paths import resolve_in_root
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.volume_ref import VolumeRef

DISK_DIR = "disk"


def unpacked_image_root(volume: VolumeRef, image_store: Path | None, image_cache: Path | None) -> Path:
    ref = volume.source.get("image")
    field = volume.field("image")
    if not isinstance(ref, str) or not ref:
        raise StorageError(field, "an image reference is required")
    if image_cache is None:
        raise StorageError(field, "this launcher has no image cache directory to unpack containerDisk images into")
    try:
        image = find_image(image_store, ref)
        # Absolute: the unpacked path becomes an overlay's backing file name, and a
        # relative one would be read relative to the overlay's directory.
        return unpack_image(image, Path(os.path.abspath(image_cache)))
    except ImageNotFound:
        raise StorageError(field, f"image {ref!r} is not in the node's image store") from None
    except ImageFormatError as exc:
        raise StorageError(field, f"image {ref!r} cannot be used: {exc}") from None


def image_disk_file(volume: VolumeRef, rootfs: Path) -> Path:
    """The disk file inside an unpacked image, resolved without leaving rootfs."""
    path = volume.source.get("path")
    if path is None or path == "":
        return _single_file_in_disk_dir(volume, rootfs)
    field = volume.field("path")
    if not isinstance(path, str) or "\x00" in path:
        raise StorageError(field, "must be a path inside the image")
    if ".." in path.split("/"):
        raise StorageError(field, f"{path!r} must not contain '..'")
    # Absolute or not, the path is inside the image; symlinks in the image resolve as
    # they would inside the container, so none can point at the node's files.
    return _regular_file(resolve_in_root(rootfs, path), rootfs, field, path)


def _single_file_in_disk_dir(volume: VolumeRef, rootfs: Path) -> Path:
    field = volume.field("path")
    disk_dir = resolve_in_root(rootfs, DISK_DIR)
    try:
        entries = sorted(os.listdir(disk_dir))
    except (FileNotFoundError, NotADirectoryError):
        raise StorageError(field, f"image has no /{DISK_DIR} directory; set path to the disk file") from None
    if not entries:
        raise StorageError(field, f"image has no file in /{DISK_DIR}")
    if len(entries) > 1:
        raise StorageError(
            field, f"image has {len(entries)} files in /{DISK_DIR} ({', '.join(entries)}); set path to choose one"
        )
    inside = f"{DISK_DIR}/{entries[0]}"
    return _regular_file(resolve_in_root(rootfs, inside), rootfs, field, "/" + inside)


def _regular_file(path: Path, rootfs: Path, field: str, shown: str) -> Path:
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise StorageError(field, f"{shown!r} does not exist in the image") from None
    # A device node in a layer would otherwise hand the guest a node's device.
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(field, f"{shown!r} in the image is not a regular file")
    if not path.is_relative_to(rootfs):
        raise StorageError(field, f"{shown!r} resolves outside the image")
    return path


def make_read_only(path: Path) -> None:
    """Drop write permission on a shared base (QEMU runs unprivileged in a real pod)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    wanted = mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    if wanted != mode:
        os.chmod(path, wanted)
