"""One build of the guest: kernel, initramfs, disk, OCI images - or nothing, when
the stamp says the outputs are already those of the current inputs."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from guest_image import debian_kernel, disk, layout, oci_images, stamp
from guest_image.initramfs import build_initramfs


@dataclass(frozen=True)
class Result:
    outputs: layout.Outputs
    stamp: stamp.Stamp
    rebuilt_files: bool
    repackaged_images: bool


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    # build.sh and a test fixture may build at the same time; the second one waits
    # and then finds the outputs up to date.
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _log(message: str) -> None:
    print(f"guest_image: {message}", file=sys.stderr, flush=True)


def build(outputs: layout.Outputs | None = None, *, force: bool = False) -> Result:
    outputs = outputs or layout.default_outputs()
    with _locked(outputs.out):
        package, deb = debian_kernel.fetch(outputs.cache)
        inputs = stamp.current_inputs(package.key)
        recorded = stamp.read(outputs.stamp)
        files_ok = (
            not force
            and recorded is not None
            and recorded.inputs == inputs
            and stamp.outputs_match(recorded, outputs.files())
        )
        if files_ok and recorded is not None:
            current = recorded
        else:
            started = time.monotonic()
            debian_kernel.verify(package, deb)
            current = _build_files(outputs, deb, inputs)
            _log(f"built {outputs.out} from {package.key} in {time.monotonic() - started:.1f}s")
        stored = oci_images.stored_digests(outputs)
        images_ok = files_ok and recorded is not None and stored == recorded.images and None not in stored.values()
        if images_ok:
            current.images = dict(recorded.images) if recorded else {}
        else:
            current.images = oci_images.package(outputs, package.key)
            _log(f"packaged {', '.join(sorted(current.images))} into {outputs.store}")
        stamp.write(outputs.stamp, current)
        return Result(outputs, current, rebuilt_files=not files_ok, repackaged_images=not images_ok)


def _build_files(outputs: layout.Outputs, deb: Path, inputs: dict[str, str]) -> stamp.Stamp:
    outputs.out.mkdir(parents=True, exist_ok=True)
    # The stamp goes first: a build interrupted halfway is never taken as up to date.
    outputs.stamp.unlink(missing_ok=True)
    with debian_kernel.extracted(deb, outputs.cache) as kernel:
        initramfs, modules = build_initramfs(kernel.modules)
        _write_atomic(outputs.vmlinuz, kernel.vmlinuz.read_bytes())
        _write_atomic(outputs.initramfs, initramfs)
        version = kernel.modules.version
    disk.build_disk(outputs.disk, outputs.vmlinuz, outputs.initramfs, layout.KERNEL_CMDLINE)
    return stamp.Stamp(
        inputs=inputs,
        outputs={path.name: stamp.sha256_file(path) for path in outputs.files()},
        kernel_version=version,
        modules=[m.name for m in modules],
    )
