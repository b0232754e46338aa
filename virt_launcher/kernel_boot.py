"""spec.domain.firmware.kernelBoot: the kernel and initrd come out of a container image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oci_layout.store import ImageNotFound, find_image
from oci_layout.unpack import unpack_image
from virt_launcher.domain.errors import SpecProblem, UnsupportedSpec

Obj = dict[str, Any]
_FIELD = "spec.domain.firmware.kernelBoot.container"


def _inside(rootfs: Path, path: str | None, field: str) -> Path | None:
    if not path:
        return None
    candidate = (rootfs / path.lstrip("/")).resolve()
    if not candidate.is_relative_to(rootfs.resolve()):
        raise UnsupportedSpec([SpecProblem(field, f"{path!r} points outside the image")])
    if not candidate.is_file():
        raise UnsupportedSpec([SpecProblem(field, f"{path!r} is not a file in the image")])
    return candidate


def kernel_and_initrd(vmi: Obj, image_store: Path | None, cache: Path) -> tuple[Path | None, Path | None]:
    kernel_boot = ((vmi["spec"]["domain"].get("firmware") or {}).get("kernelBoot")) or {}
    container = kernel_boot.get("container")
    if not container:
        return None, None
    try:
        image = find_image(image_store, container.get("image", ""))
    except ImageNotFound as error:
        raise UnsupportedSpec([SpecProblem(f"{_FIELD}.image", str(error))]) from None
    rootfs = unpack_image(image, cache)
    kernel = _inside(rootfs, container.get("kernelPath"), f"{_FIELD}.kernelPath")
    initrd = _inside(rootfs, container.get("initrdPath"), f"{_FIELD}.initrdPath")
    if kernel is None:
        raise UnsupportedSpec([SpecProblem(f"{_FIELD}.kernelPath", "required to boot a kernel")])
    return kernel, initrd
