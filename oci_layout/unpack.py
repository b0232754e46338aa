"""Unpacking an image's layers into a root filesystem, once per manifest digest.

Layers are applied in order with the OCI whiteout rules (".wh.<name>" deletes a
lower-layer entry, ".wh..wh..opq" empties a lower-layer directory). A layer is
untrusted input: member names that are absolute or climb with ".." are refused,
and parent directories are resolved in the rootfs's own terms, so a symlink from an
earlier member or layer (``etc -> /``) cannot carry a later write out of the rootfs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from oci_layout.store import ImageFormatError, StoredImage, blob_path
from oci_layout.rooted_paths import UnsafePath, make_dirs_in_root, relative_parts, resolve_in_root

if TYPE_CHECKING:
    import tarfile

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"

_TAR_MODES = {
    "application/vnd.oci.image.layer.v1.tar": "r|",
    "application/vnd.oci.image.layer.v1.tar+gzip": "r|gz",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "r|",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "r|gz",
    "application/vnd.docker.image.rootfs.diff.tar": "r|",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "r|gz",
}


class UnsafeLayer(ImageFormatError):
    """A layer tried to write outside its rootfs."""


class _HashingReader:
    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.hash.hexdigest()


def unpack_image(image: StoredImage, cache_dir: Path) -> Path:
    """Return the image's rootfs under cache_dir, unpacking it on first use.

    The unpack happens in a temporary directory that is renamed into place, so a
    crash or a concurrent unpack never leaves a half-written rootfs under the digest.
    """
    key = image.manifest_digest.split(":", 1)[1]
    final = cache_dir / key
    rootfs = final / "rootfs"
    if rootfs.is_dir():
        return rootfs
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".unpack-{key[:12]}-", dir=cache_dir))
    try:
        (work / "rootfs").mkdir(mode=0o755)
        for layer in image.layers:
            _apply_blob(image, layer, work / "rootfs")
        try:
            os.rename(work, final)
        except OSError:
            if not rootfs.is_dir():
                raise
            # Another unpack of the same digest won the race; its result is identical.
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return rootfs


def _apply_blob(image: StoredImage, layer: dict, rootfs: Path) -> None:
    # Here, not at the top: a launcher whose image is unpacked already never needs tarfile.
    import tarfile

    media_type = layer.get("mediaType")
    mode = _TAR_MODES.get(media_type)  # type: ignore[arg-type]
    if mode is None:
        raise ImageFormatError(f"image {image.ref}: unsupported layer media type {media_type!r}")
    digest = layer.get("digest")
    path = blob_path(image.store, digest)
    try:
        source = open(path, "rb")
    except FileNotFoundError:
        raise ImageFormatError(f"image {image.ref}: layer {digest} is missing from {image.store}") from None
    with source:
        reader = _HashingReader(source)
        try:
            with tarfile.open(fileobj=reader, mode=mode) as tar:  # type: ignore[call-overload]
                apply_layer(tar, rootfs)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, UnsafeLayer):
                raise
            raise ImageFormatError(f"image {image.ref}: layer {digest} cannot be unpacked: {exc}") from None
        if reader.drain() != digest:
            raise ImageFormatError(f"image {image.ref}: layer {digest} does not match its digest")


def apply_layer(tar: tarfile.TarFile, rootfs: Path) -> None:
    """Apply one layer's members on top of rootfs."""
    created: set[Path] = set()
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    for member in tar:
        try:
            parts = _member_parts(member.name)
        except UnsafePath as exc:
            raise UnsafeLayer(str(exc)) from None
        if not parts:
            continue
        name = parts[-1]
        if name.startswith(WHITEOUT_PREFIX):
            _apply_whiteout(member, parts, rootfs, created)
        else:
            target = make_dirs_in_root(rootfs, parts[:-1]) / name
            _create(tar, member, target, rootfs)
            created.add(target)
            if member.isdir():
                directories.append((target, member))
    # Directory modes last, so a read-only directory does not block its own members.
    for path, member in reversed(directories):
        _set_metadata(path, member)


def _apply_whiteout(member: tarfile.TarInfo, parts: list[str], rootfs: Path, created: set[Path]) -> None:
    # Whiteouts only ever hide what lower layers made, never this layer's own files.
    parent = resolve_in_root(rootfs, "/".join(parts[:-1]))
    if not parent.is_dir():
        return
    name = parts[-1]
    if name == OPAQUE_WHITEOUT:
        _clear_directory(parent, keep=created)
        return
    hidden = name[len(WHITEOUT_PREFIX) :]
    if hidden in ("", ".", ".."):
        raise UnsafeLayer(f"layer member {member.name!r} is not a valid whiteout")
    if parent / hidden not in created:
        _remove(parent / hidden)


def _member_parts(name: str) -> list[str]:
    stripped = name[2:] if name.startswith("./") else name
    stripped = stripped.rstrip("/")
    if stripped in ("", "."):
        return []
    return relative_parts(stripped, "layer member")


def _clear_directory(directory: Path, keep: set[Path]) -> None:
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry not in keep:
            _remove(entry)


def _remove(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _create(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, rootfs: Path) -> None:
    existing = _lstat(target)
    if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
        _remove(target)
    if member.isdir():
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            os.mkdir(target, 0o700)
        return
    if member.isreg():
        _write_file(tar, member, target)
    elif member.issym():
        # The link itself is stored verbatim; whoever follows it later resolves it
        # inside the rootfs (resolve_in_root, or the chroot of the container).
        os.symlink(member.linkname, target)
    elif member.islnk():
        _hard_link(member, target, rootfs)
    elif member.isfifo():
        os.mkfifo(target, 0o600)
    else:
        # Device nodes are skipped: containers see the host's /dev anyway, and a
        # layer must not be able to mint device files on the node's disk.
        return
    _set_metadata(target, member)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        if source is not None:
            shutil.copyfileobj(source, out, 1 << 20)


def _hard_link(member: tarfile.TarInfo, target: Path, rootfs: Path) -> None:
    try:
        parts = _member_parts(member.linkname)
    except UnsafePath as exc:
        raise UnsafeLayer(f"hard link {member.name!r}: {exc}") from None
    source = resolve_in_root(rootfs, "/".join(parts[:-1])) / parts[-1] if parts else rootfs
    info = _lstat(source)
    if info is None or not stat.S_ISREG(info.st_mode):
        raise UnsafeLayer(f"hard link {member.name!r} points at {member.linkname!r}, which is not a file in the image")
    os.link(source, target, follow_symlinks=False)


def _set_metadata(path: Path, member: tarfile.TarInfo) -> None:
    if member.islnk():
        return  # a hard link shares its source's inode and metadata
    if os.geteuid() == 0:
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
    if member.issym():
        return
    os.chmod(path, member.mode & 0o7777)
    os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
