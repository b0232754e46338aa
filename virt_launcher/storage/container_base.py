"""A containerDisk's base as found once per node: its trusted format, and the header
of a qcow2 overlay over it.

Every VMI of an image inspects the same read-only base (qemu-img info, a process and
~5 ms) and gets the same overlay header over it (qemu-img create, ~10 ms): both
depend only on the base file. The first launcher on the node records them beside
the unpacked image; the others read the format and copy the header. The record is keyed by
the base's path and identity (device, inode, size, mtime), so a base unpacked anew
is inspected anew, and is published by one rename, so nobody reads half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from virt_launcher.storage.disk import DiskFormat
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.overlay import ensure_overlay
from virt_launcher.storage.qemu_img import QemuImgError, image_info

RECORDS_DIR = ".container-bases"
FORMAT_FILE = "format"
OVERLAY_FILE = "overlay.qcow2"
_FORMATS: tuple[DiskFormat, ...] = ("raw", "qcow2")


@dataclass(frozen=True)
class ContainerBase:
    format: DiskFormat
    # A qcow2 over the base, copied as each VMI's overlay; None: make one (qemu-img).
    overlay_template: Path | None


def container_base(base: Path, unpacked: Path, field: str) -> ContainerBase:
    """The recorded base, recording it first (under unpacked, the image's directory in
    the node's image cache) if this node has not seen it yet."""
    records = unpacked / RECORDS_DIR
    record = records / _identity(base, field)
    found = _read(record)
    if found is not None:
        return found
    base_format = trusted_base_format(base, field)
    records.mkdir(parents=True, exist_ok=True)
    draft = Path(tempfile.mkdtemp(prefix=".draft-", dir=records))
    try:
        ensure_overlay(draft / OVERLAY_FILE, base, base_format, reuse=False, field=field)
        (draft / FORMAT_FILE).write_text(base_format)
        try:
            os.rename(draft, record)
        except OSError:
            # Another launcher published the same record first; or something broke the
            # one there, and this VMI's overlay is made the slow way.
            return _read(record) or ContainerBase(base_format, None)
    finally:
        shutil.rmtree(draft, ignore_errors=True)
    return ContainerBase(base_format, record / OVERLAY_FILE)


def trusted_base_format(base: Path, field: str) -> DiskFormat:
    """raw or qcow2 as detected, refusing images that would reach beyond themselves.

    A qcow2 from a registry can name a backing file or an external data file anywhere
    on the node (/etc/shadow, another guest's disk); the guest would read it.
    """
    try:
        info = image_info(base)
    except QemuImgError as exc:
        raise StorageError(field, f"cannot inspect the disk image: {exc}") from None
    if info.format == "raw":
        return "raw"
    if info.format != "qcow2":
        raise StorageError(field, f"disk image format {info.format!r} is not supported (raw or qcow2)")
    if info.backing_file:
        raise StorageError(field, "the qcow2 disk image has a backing file, which is not allowed")
    if info.data_file:
        raise StorageError(field, "the qcow2 disk image has an external data file, which is not allowed")
    return "qcow2"


def _identity(base: Path, field: str) -> str:
    try:
        st = os.stat(base)
    except OSError as exc:
        raise StorageError(field, f"cannot read the disk image: {exc.strerror}") from None
    key = f"{base}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(key.encode(errors="surrogateescape")).hexdigest()


def _read(record: Path) -> ContainerBase | None:
    try:
        recorded = (record / FORMAT_FILE).read_text()
    except OSError:
        return None
    base_format = next((known for known in _FORMATS if known == recorded), None)
    if base_format is None or not (record / OVERLAY_FILE).is_file():
        return None
    return ContainerBase(base_format, record / OVERLAY_FILE)
