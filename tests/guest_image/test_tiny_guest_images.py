"""The built guest and its OCI images, checked without booting: the store holds
both images with the expected files, the archive and disk are well formed, a
second build does nothing, and a fresh build gives identical bytes."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from guest_image import disk, init_script, layout, markers
from guest_image.build import build
from guest_image.stamp import sha256_file
from oci_layout.store import blob_path, find_image


def _layer_files(store: Path, ref: str) -> dict[str, str]:
    """{path in the image: sha256} of the regular files of a one-layer image."""
    image = find_image(store, ref)
    [layer] = image.layers
    files: dict[str, str] = {}
    with tarfile.open(blob_path(store, layer["digest"]), "r|*") as tar:
        for member in tar:
            if member.isfile():
                content = tar.extractfile(member)
                assert content is not None
                files["/" + member.name] = hashlib.sha256(content.read()).hexdigest()
    return files


def test_store_holds_the_container_disk_and_kernel_boot_images(guest_outputs: layout.Outputs) -> None:
    store = guest_outputs.store
    assert (store / "oci-layout").is_file() and (store / "index.json").is_file()
    assert _layer_files(store, layout.CONTAINER_DISK_REF) == {
        layout.CONTAINER_DISK_PATH: sha256_file(guest_outputs.disk)
    }
    assert _layer_files(store, layout.KERNEL_BOOT_REF) == {
        layout.KERNEL_PATH: sha256_file(guest_outputs.vmlinuz),
        layout.INITRD_PATH: sha256_file(guest_outputs.initramfs),
    }
    # The short forms the kubelet resolves find them as well.
    assert find_image(store, "kubevirt-py/tiny-guest").ref == "kubevirt-py/tiny-guest"


def test_second_build_does_nothing(guest_outputs: layout.Outputs) -> None:
    result = build(guest_outputs)
    assert not result.rebuilt_files and not result.repackaged_images


def test_initramfs_holds_init_busybox_and_modules(guest_outputs: layout.Outputs) -> None:
    listing = subprocess.run(
        ["cpio", "-t", "--quiet"], input=gzip.decompress(guest_outputs.initramfs.read_bytes()),
        capture_output=True, check=True,
    ).stdout.decode().split()  # fmt: skip
    for path in ("init", "bin/busybox", "bin/sh", "sbin/acpid", "dev/console", init_script.MODULE_LIST.lstrip("/")):
        assert path in listing
    modules = {Path(p).name.removesuffix(".ko").replace("-", "_") for p in listing if p.endswith(".ko")}
    for name in ("virtio_blk", "virtio_pci", "virtio_scsi", "ahci", "ata_piix", "sr_mod", "isofs", "vfat", "button"):
        assert name in modules


def test_disk_has_an_active_fat_partition_with_syslinux(guest_outputs: layout.Outputs) -> None:
    with guest_outputs.disk.open("rb") as f:
        sector0 = f.read(512)
        f.seek(disk.PART_START * 512)
        boot_sector = f.read(512)
    assert sector0[510:] == b"\x55\xaa"
    status, start, sectors = sector0[446], *struct.unpack_from("<II", sector0, 446 + 8)
    assert (status, start) == (0x80, disk.PART_START)
    assert (start + sectors) * 512 == guest_outputs.disk.stat().st_size == disk.SIZE_MIB << 20
    assert boot_sector[43:54].decode().strip() == disk.FS_LABEL
    listing = subprocess.run(
        ["mdir", "-a", "-b", "-i", f"{guest_outputs.disk}@@{disk.PART_START * 512}", "::/"],
        capture_output=True, text=True, check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    ).stdout.lower()  # fmt: skip
    for name in ("ldlinux.sys", "ldlinux.c32", "syslinux.cfg", disk.KERNEL_FILE, disk.INITRD_FILE):
        assert f"::/{name}" in listing


def test_init_script_prints_every_marker() -> None:
    script = init_script.init() + init_script.power_button()
    for marker in (markers.BOOTED, markers.DATASOURCE, markers.MOUNTED, markers.USERDATA_DONE,
                   markers.USERDATA_SKIPPED, markers.COUNTER):  # fmt: skip
        word = marker.removeprefix(markers.PREFIX + " ")
        assert f"say {word}" in script, marker
    assert markers.POWEROFF in script


def test_marker_parsers() -> None:
    assert markers.counter_value("KUBEVIRT-PY-GUEST COUNTER 42\r") == 42
    assert markers.counter_value("KUBEVIRT-PY-GUEST BOOTED") is None
    assert markers.datasource("KUBEVIRT-PY-GUEST DATASOURCE cidata iid-1") == ("cidata", "iid-1")
    assert markers.datasource("KUBEVIRT-PY-GUEST DATASOURCE none") == ("none", None)
    assert markers.userdata_exit_code("KUBEVIRT-PY-GUEST USERDATA DONE 3") == 3


@pytest.mark.slow
def test_a_fresh_build_is_byte_identical(guest_outputs: layout.Outputs) -> None:
    with tempfile.TemporaryDirectory(prefix="kvg-build-", dir="/tmp") as tmp:
        # The same kernel .deb (no download): share the cache.
        (Path(tmp) / "cache").symlink_to(guest_outputs.cache)
        fresh = build(layout.Outputs(Path(tmp) / "guest"), force=True)
        assert fresh.rebuilt_files
        for ours, theirs in zip(fresh.outputs.files(), guest_outputs.files(), strict=True):
            assert sha256_file(ours) == sha256_file(theirs), ours.name
        assert fresh.stamp.images == build(guest_outputs).stamp.images
