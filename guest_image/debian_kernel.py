"""The Debian kernel the guest runs: the package linux-image-amd64 depends on,
downloaded as a .deb into a cache and unpacked with dpkg-deb - never installed.

The cached .deb is what makes rebuilds offline: once it is there, building needs
no network. apt verifies what it downloads against the archive's signed index;
a cached file is checked against the same SHA256 before use.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from guest_image.kmod import ModuleTree

META_PACKAGE = "linux-image-amd64"
ARCH = "amd64"


class KernelError(RuntimeError):
    pass


@dataclass(frozen=True)
class KernelPackage:
    name: str  # e.g. linux-image-6.1.0-56-amd64
    version: str  # e.g. 6.1.192-2

    @property
    def deb_name(self) -> str:
        # apt-get download's file name: an epoch's ':' is written as %3a.
        return f"{self.name}_{self.version.replace(':', '%3a')}_{ARCH}.deb"

    @property
    def key(self) -> str:
        return f"{self.name}={self.version}"


@dataclass(frozen=True)
class ExtractedKernel:
    vmlinuz: Path
    modules: ModuleTree


def _apt_fields(package: str) -> dict[str, str]:
    result = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise KernelError(f"apt-cache show {package} failed: {result.stderr.strip()}")
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith(" ") and key not in fields:
            fields[key] = value.strip()
    return fields


def resolve(meta: str = META_PACKAGE) -> KernelPackage:
    """The kernel package (and version) the meta package's candidate depends on."""
    depends = _apt_fields(meta).get("Depends", "")
    for alternative in re.split(r"[,|]", depends):
        # Debian pins it exactly: "linux-image-6.1.0-56-amd64 (= 6.1.192-2)".
        match = re.match(r"\s*(linux-image-\S+)\s*\(=\s*([^)\s]+)\)", alternative)
        if match:
            return KernelPackage(match.group(1), match.group(2))
    raise KernelError(f"{meta} depends on no linux-image package: {depends!r}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_package(deb: Path) -> KernelPackage:
    fields = subprocess.run(
        ["dpkg-deb", "--show", "--showformat=${Package}\\n${Version}\\n", str(deb)],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    return KernelPackage(fields[0], fields[1])


def fetch(cache: Path) -> tuple[KernelPackage, Path]:
    """The kernel package to build from and its .deb in cache, downloading if needed
    (not yet verified: see verify, which costs a hash of ~70 MB).

    Without apt lists or network, the newest cached kernel .deb is used instead."""
    cache.mkdir(parents=True, exist_ok=True)
    try:
        package = resolve()
    except KernelError as exc:
        return _fallback(cache, f"cannot resolve {META_PACKAGE} ({exc})")
    deb = cache / package.deb_name
    if not deb.exists():
        print(f"guest_image: downloading {package.key}", file=sys.stderr)
        # Into a private directory first, so an interrupted download never looks cached.
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            result = subprocess.run(
                ["apt-get", "download", "-q", package.key], cwd=tmp, capture_output=True, text=True, check=False
            )
            got = Path(tmp) / package.deb_name
            if result.returncode != 0 or not got.exists():
                return _fallback(cache, f"apt-get download {package.key} failed: {result.stderr.strip()}")
            got.replace(deb)
        _prune(cache, keep=deb)
    return package, deb


def _prune(cache: Path, keep: Path) -> None:
    # A superseded kernel .deb (~70 MB) is never used again once its successor is here.
    for old in cache.glob(f"linux-image-*_{ARCH}.deb"):
        if old != keep:
            old.unlink(missing_ok=True)


def verify(package: KernelPackage, deb: Path) -> None:
    """Check a cached .deb against the SHA256 in apt's index before unpacking it (a
    no-op when apt no longer knows that version). A mismatching file is removed."""
    try:
        expected = _apt_fields(f"{package.name}={package.version}").get("SHA256")
    except KernelError:
        return
    if expected and _sha256(deb) != expected:
        deb.unlink()
        raise KernelError(f"{deb} does not match the SHA256 in apt's index; removed it, build again to download it")


def _fallback(cache: Path, why: str) -> tuple[KernelPackage, Path]:
    cached = sorted(cache.glob(f"linux-image-*_{ARCH}.deb"), key=lambda p: p.stat().st_mtime)
    if not cached:
        raise KernelError(f"{why}; and no kernel .deb is cached in {cache}")
    print(f"guest_image: {why}; using cached {cached[-1].name}", file=sys.stderr)
    return _cached_package(cached[-1]), cached[-1]


@contextmanager
def extracted(deb: Path, workdir: Path) -> Iterator[ExtractedKernel]:
    """The .deb unpacked (dpkg-deb -x) under workdir, removed afterwards (~400 MB)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # A build killed while unpacking leaves its tree behind; one that old is no
    # other build's (a live one needs seconds), so it goes.
    for stale in workdir.glob(".kernel-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    root = Path(tempfile.mkdtemp(dir=workdir, prefix=".kernel-"))
    try:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        vmlinuz = sorted((root / "boot").glob("vmlinuz-*"))
        if len(vmlinuz) != 1:
            raise KernelError(f"{deb.name} holds {len(vmlinuz)} kernels in /boot, expected one")
        version = vmlinuz[0].name.removeprefix("vmlinuz-")
        # Debian 12 ships modules under /lib; later releases under /usr/lib.
        candidates = [root / "lib" / "modules" / version, root / "usr" / "lib" / "modules" / version]
        moddir = next((c for c in candidates if c.is_dir()), None)
        if moddir is None:
            raise KernelError(f"{deb.name} has no lib/modules/{version}")
        yield ExtractedKernel(vmlinuz[0], ModuleTree(moddir))
    finally:
        shutil.rmtree(root, ignore_errors=True)
