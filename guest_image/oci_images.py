"""The guest as OCI images in the local image store (an OCI image layout), made
with the kubelet's own oci_store so what we write is what it reads.

- CONTAINER_DISK_REF: the disk at /disk/disk.img, the upstream containerDisk layout.
- KERNEL_BOOT_REF: /boot/vmlinuz and /boot/initramfs.img, for
  spec.domain.firmware.kernelBoot.container (kernelPath, initrdPath).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from guest_image import layout
from guest_image.reproducible import clamp_tree
from oci_layout import store as oci_store


def _labels(kernel: str) -> dict[str, object]:
    return {"Labels": {"io.kubevirt-py.guest.kernel-package": kernel}}


def _add(store: Path, ref: str, files: dict[str, Path], kernel: str) -> str:
    with tempfile.TemporaryDirectory(dir=store.parent, prefix=".oci-root-") as tmp:
        root = Path(tmp)
        for inside, source in files.items():
            dest = root / inside.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            dest.chmod(0o644)
        # The layer tar records mtimes: fixed ones keep the digest a function of content.
        clamp_tree(root)
        return oci_store.add_image(store, ref, root, _labels(kernel))


def package(outputs: layout.Outputs, kernel: str) -> dict[str, str]:
    """Add (or replace) both images; returns {ref: manifest digest}."""
    outputs.store.mkdir(parents=True, exist_ok=True)
    return {
        layout.CONTAINER_DISK_REF: _add(
            outputs.store, layout.CONTAINER_DISK_REF, {layout.CONTAINER_DISK_PATH: outputs.disk}, kernel
        ),
        layout.KERNEL_BOOT_REF: _add(
            outputs.store,
            layout.KERNEL_BOOT_REF,
            {layout.KERNEL_PATH: outputs.vmlinuz, layout.INITRD_PATH: outputs.initramfs},
            kernel,
        ),
    }


def stored_digests(outputs: layout.Outputs) -> dict[str, str | None]:
    """{ref: manifest digest or None when the store lacks (a readable) image}."""
    digests: dict[str, str | None] = {}
    for ref in (layout.CONTAINER_DISK_REF, layout.KERNEL_BOOT_REF):
        try:
            image = oci_store.find_image(outputs.store, ref)
        except (oci_store.ImageNotFound, oci_store.ImageFormatError):
            digests[ref] = None
            continue
        # find_image checks the manifest and config; a lost layer blob counts as missing too.
        layers_present = all(oci_store.blob_path(outputs.store, layer.get("digest")).is_file() for layer in image.layers)
        digests[ref] = image.manifest_digest if layers_present else None
    return digests
