"""The few qemu-img operations storage needs: inspect an image, make an overlay or a
blank qcow2.

Paths passed here are absolute: QEMU reads "name:rest" as protocol "name", and an
absolute path cannot start with a protocol prefix.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Inspecting an image parses untrusted metadata (a containerDisk comes from anyone's
# registry); a crafted qcow2 must not be able to make qemu-img eat the node's memory
# or CPU, so inspection runs under limits.
_INSPECT_MEMORY = 1 << 30
_INSPECT_CPU_SECONDS = 10
_TIMEOUT_SECONDS = 60


class QemuImgError(RuntimeError):
    """qemu-img failed; the message is its own explanation."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    virtual_size: int
    backing_file: str | None
    # qcow2 images may keep their data in a separate, named file.
    data_file: str | None


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise QemuImgError(f"{args[0]} did not finish within {_TIMEOUT_SECONDS}s") from None
    except FileNotFoundError:
        raise QemuImgError(f"{args[0]} is not installed") from None
    if done.returncode != 0:
        raise QemuImgError((done.stderr or done.stdout).strip() or f"{args[0]} exited with {done.returncode}")
    return done.stdout


def _limited(args: list[str]) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return args
    return [prlimit, f"--as={_INSPECT_MEMORY}", f"--cpu={_INSPECT_CPU_SECONDS}", *args]


def image_info(path: Path) -> ImageInfo:
    """What qemu-img detects in path. -U because the image may be open in a running guest."""
    raw = _run(_limited(["qemu-img", "info", "--output=json", "-U", str(path)]))
    try:
        info: dict[str, Any] = json.loads(raw)
    except ValueError:
        raise QemuImgError(f"qemu-img info printed something that is not JSON for {path}") from None
    specific = (info.get("format-specific") or {}).get("data") or {}
    return ImageInfo(
        format=str(info.get("format", "")),
        virtual_size=int(info.get("virtual-size", 0)),
        backing_file=info.get("full-backing-filename") or info.get("backing-filename"),
        data_file=specific.get("data-file"),
    )


def create_overlay(overlay: Path, base: Path, base_format: str) -> None:
    """A qcow2 at overlay reading through to base; base is only ever opened read-only.

    -F pins the base's format in the overlay header, so QEMU never probes it again
    (probing a raw image a guest can write is how raw data gets read as qcow2).
    """
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", str(base), str(overlay)])


def create_qcow2(path: Path, size: int) -> None:
    _run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(size)])
