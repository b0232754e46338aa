"""A local OCI image-layout directory (index.json, oci-layout, blobs/sha256/...):
finding an image in it by reference, and building one from a directory tree.

Building is how guest disks become containerDisk images and how tests make images
without a registry; reading is how the kubelet "pulls". Layers are unpacked by
oci_unpack.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from oci_layout.image_ref import ImageReference, InvalidReference, annotation_matches, parse_reference

REF_NAME = "org.opencontainers.image.ref.name"
# containerd's exports carry the full name here and only the tag in REF_NAME.
CONTAINERD_NAME = "io.containerd.image.name"

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

MANIFEST_TYPES = {MEDIA_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {MEDIA_INDEX, DOCKER_MANIFEST_LIST}

_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class ImageNotFound(LookupError):
    def __init__(self, ref: str, store: Path | None) -> None:
        super().__init__(f"image {ref} not found in {store if store is not None else '<no image store configured>'}")
        self.ref = ref
        self.store = store


class ImageFormatError(ValueError):
    """The layout or one of its blobs is malformed, unsupported or corrupt."""


@dataclass(frozen=True)
class StoredImage:
    store: Path
    ref: str
    manifest_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers") or [])

    @property
    def runtime_config(self) -> dict[str, Any]:
        return dict(self.config.get("config") or {})


def blob_path(store: Path, digest: object) -> Path:
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise ImageFormatError(f"unsupported or malformed digest {digest!r} in {store}")
    return store / "blobs" / "sha256" / digest.split(":", 1)[1]


def read_json_blob(store: Path, descriptor: dict[str, Any]) -> dict[str, Any]:
    digest = descriptor.get("digest")
    path = blob_path(store, digest)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImageFormatError(f"blob {digest} is missing from {store}") from None
    if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        raise ImageFormatError(f"blob {digest} in {store} does not match its digest")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImageFormatError(f"blob {digest} in {store} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ImageFormatError(f"blob {digest} in {store} is not a JSON object")
    return value


def _read_index(store: Path) -> dict[str, Any]:
    try:
        index = json.loads((store / "index.json").read_text())
    except FileNotFoundError:
        return {"schemaVersion": 2, "manifests": []}
    except ValueError as exc:
        raise ImageFormatError(f"{store}/index.json is not JSON: {exc}") from None
    if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
        raise ImageFormatError(f"{store}/index.json is not an OCI image index")
    return index


def _match_strength(descriptor: dict[str, Any], ref: ImageReference) -> str | None:
    if ref.digest and descriptor.get("digest") == ref.digest:
        return "full"
    annotations = descriptor.get("annotations") or {}
    best = None
    for key in (REF_NAME, CONTAINERD_NAME):
        value = annotations.get(key)
        if isinstance(value, str):
            strength = annotation_matches(value, ref)
            if strength == "full":
                return "full"
            best = best or strength
    return None if ref.digest else best


def _host_platform_manifest(store: Path, index: dict[str, Any], ref: str) -> dict[str, Any]:
    arch = _GOARCH.get(platform.machine(), platform.machine())
    for descriptor in index.get("manifests") or []:
        plat = descriptor.get("platform") or {}
        if plat.get("os", "linux") == "linux" and plat.get("architecture", arch) == arch:
            if descriptor.get("mediaType") in MANIFEST_TYPES:
                return descriptor
    raise ImageFormatError(f"image {ref} in {store} has no manifest for linux/{arch}")


def find_image(store: Path | None, ref: str) -> StoredImage:
    """Look ref up in the layout; a nested image index resolves to this host's platform."""
    if store is None or not (store / "index.json").is_file():
        raise ImageNotFound(ref, store)
    try:
        parsed = parse_reference(ref)
    except InvalidReference as exc:
        raise ImageFormatError(str(exc)) from None
    matches: dict[str, list[dict[str, Any]]] = {"full": [], "tag": []}
    for descriptor in _read_index(store).get("manifests") or []:
        if isinstance(descriptor, dict):
            strength = _match_strength(descriptor, parsed)
            if strength:
                matches[strength].append(descriptor)
    candidates = matches["full"] or matches["tag"]
    if not candidates:
        raise ImageNotFound(ref, store)
    if len({d.get("digest") for d in candidates}) > 1:
        raise ImageFormatError(f"image {ref} is ambiguous in {store}: several images carry that name")
    descriptor = candidates[0]
    if descriptor.get("mediaType") in INDEX_TYPES:
        descriptor = _host_platform_manifest(store, read_json_blob(store, descriptor), ref)
    if descriptor.get("mediaType") not in MANIFEST_TYPES:
        raise ImageFormatError(f"image {ref} in {store} has unsupported media type {descriptor.get('mediaType')!r}")
    manifest = read_json_blob(store, descriptor)
    config_descriptor = manifest.get("config")
    if not isinstance(config_descriptor, dict):
        raise ImageFormatError(f"image {ref} in {store} has a manifest without a config")
    return StoredImage(
        store=store,
        ref=ref,
        manifest_digest=descriptor["digest"],
        manifest=manifest,
        config=read_json_blob(store, config_descriptor),
    )


class _HashingWriter:
    """Counts and hashes what passes through on its way to the next writer."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


@contextmanager
def _store_lock(store: Path) -> Iterator[None]:
    # index.json is replaced by rename, so the lock lives on the directory itself.
    fd = os.open(store, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _commit_blob(store: Path, temp: Path, digest: str) -> None:
    final = blob_path(store, digest)
    if final.exists():
        temp.unlink()
    else:
        os.replace(temp, final)


def _write_json_blob(store: Path, value: dict[str, Any]) -> tuple[str, int]:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    path = blob_path(store, digest)
    if not path.exists():
        _atomic_write(path, raw)
    return digest, len(raw)


def _atomic_write(path: Path, raw: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(raw)
    os.replace(temp, path)


def _write_layer(store: Path, rootfs: Path, compress: bool) -> tuple[str, int, str]:
    """Tar rootfs into a blob; returns (blob digest, blob size, uncompressed diff_id)."""
    # Here, not at the top: every launcher reads the store, only image builders write one.
    import gzip
    import tarfile

    fd, temp = tempfile.mkstemp(prefix=".tmp-layer-", dir=store / "blobs" / "sha256")
    with os.fdopen(fd, "wb") as raw:
        blob = _HashingWriter(raw)
        gz = gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=6, mtime=0) if compress else None
        diff = _HashingWriter(gz if gz else blob)
        with tarfile.open(fileobj=diff, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in _walk_sorted(rootfs):
                info = tar.gettarinfo(str(path), arcname=path.relative_to(rootfs).as_posix())
                if info is None:  # sockets have no tar representation
                    continue
                # Images are owned by root inside; the builder's uid means nothing there.
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isreg():
                    with open(path, "rb") as content:
                        tar.addfile(info, content)
                else:
                    tar.addfile(info)
        if gz:
            gz.close()
    _commit_blob(store, Path(temp), blob.digest)
    return blob.digest, blob.size, diff.digest


def _walk_sorted(root: Path) -> Iterator[Path]:
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk_sorted(entry)


def add_image(
    store_dir: Path, ref: str, rootfs_dir: Path, config: dict[str, Any] | None = None, *, compress: bool = True
) -> str:
    """Package rootfs_dir as a one-layer image named ref; returns the manifest digest.

    config is the runtime part of an image config (Entrypoint, Cmd, Env, WorkingDir,
    Labels, ...). An existing image with the same name is replaced in index.json;
    its blobs stay, as with other OCI tools, since another name may share them.
    """
    store = Path(store_dir)
    parse_reference(ref)
    if not Path(rootfs_dir).is_dir():
        raise NotADirectoryError(f"image root {rootfs_dir} is not a directory")
    (store / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layout = store / "oci-layout"
    if not layout.exists():
        _atomic_write(layout, json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    layer_digest, layer_size, diff_id = _write_layer(store, Path(rootfs_dir), compress)
    image_config = {
        "architecture": _GOARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_digest, config_size = _write_json_blob(store, image_config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": MEDIA_LAYER_GZIP if compress else MEDIA_LAYER_TAR, "digest": layer_digest, "size": layer_size}
        ],
    }
    manifest_digest, manifest_size = _write_json_blob(store, manifest)
    with _store_lock(store):
        index = _read_index(store)
        kept = [
            d for d in index.get("manifests") or [] if (d.get("annotations") or {}).get(REF_NAME) != ref
        ]
        kept.append(
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {REF_NAME: ref},
            }
        )
        index.update({"schemaVersion": 2, "manifests": kept})
        _atomic_write(store / "index.json", json.dumps(index, indent=2).encode())
    return manifest_digest
