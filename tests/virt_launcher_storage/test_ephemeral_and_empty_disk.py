"""ephemeral (a claim under a throwaway overlay) and emptyDisk (a blank qcow2 per VMI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virt_launcher.storage import ClaimMount, StorageContext, StorageError, prepare_volumes
from virt_launcher.storage.qemu_img import image_info

from .helpers import prepare_one, qemu_io, sha256, vmi

MIB = 1 << 20


def ephemeral(claim: str = "golden", name: str = "scratch") -> dict:
    return {"name": name, "ephemeral": {"persistentVolumeClaim": {"claimName": claim}}}


def golden_claim(node: Path) -> tuple[Path, StorageContext]:
    mount = node / "pvc-golden"
    mount.mkdir()
    (mount / "disk.img").write_bytes(b"\x5a" * (2 * MIB))
    return mount, StorageContext(claims={"golden": ClaimMount(mount, "Filesystem", 2 * MIB)})


def test_ephemeral_overlay_never_writes_the_claim(node, workdir):
    mount, context = golden_claim(node)
    before = sha256(mount / "disk.img")

    disk = prepare_one(ephemeral(), workdir, context)

    assert (disk.format, disk.type, disk.read_only) == ("qcow2", "file", False)
    assert disk.path.parent == workdir.resolve()
    assert disk.backing == (mount / "disk.img").resolve()
    assert image_info(disk.path).virtual_size == 2 * MIB
    qemu_io(disk.path, "qcow2", "write -P 0x01 0 1M")
    qemu_io(disk.path, "qcow2", "read -P 0x01 0 1M")
    qemu_io(disk.path, "qcow2", "read -P 0x5a 1M 1M")
    assert sha256(mount / "disk.img") == before


def test_ephemeral_over_a_block_claim(node, workdir):
    device = node / "pvc-block"
    device.write_bytes(b"\x6b" * MIB)
    context = StorageContext(claims={"golden": ClaimMount(device, "Block", MIB)})
    disk = prepare_one(ephemeral(), workdir, context)
    qemu_io(disk.path, "qcow2", "write -P 0x02 0 4k")
    assert device.read_bytes() == b"\x6b" * MIB


def test_ephemeral_needs_an_existing_disk_img(node, workdir):
    mount = node / "pvc-empty"
    mount.mkdir()
    context = StorageContext(claims={"golden": ClaimMount(mount, "Filesystem", MIB)})
    with pytest.raises(
        StorageError, match=r"^spec\.volumes\[0\]\.ephemeral\.persistentVolumeClaim\.claimName: .*no disk\.img"
    ):
        prepare_one(ephemeral(), workdir, context)
    assert not (mount / "disk.img").exists()


def test_ephemeral_unknown_claim(node, workdir):
    _, context = golden_claim(node)
    with pytest.raises(StorageError, match=r"ephemeral\.persistentVolumeClaim\.claimName: claim 'nope'"):
        prepare_one(ephemeral("nope"), workdir, context)


def test_empty_disk_is_a_blank_qcow2_of_its_capacity(workdir):
    disk = prepare_one({"name": "scratch", "emptyDisk": {"capacity": "64Mi"}}, workdir, StorageContext())
    assert (disk.format, disk.type, disk.read_only) == ("qcow2", "file", False)
    assert disk.path == workdir.resolve() / "scratch.qcow2"
    info = image_info(disk.path)
    assert info.virtual_size == 64 * MIB and info.backing_file is None
    assert os.stat(disk.path).st_size < MIB
    qemu_io(disk.path, "qcow2", "read -P 0 0 1M")


def test_empty_disk_is_fresh_per_vmi_and_kept_within_one(workdir):
    volume = {"name": "scratch", "emptyDisk": {"capacity": "1Mi"}}
    disk = prepare_volumes(vmi(volume, uid="one"), workdir, StorageContext())["scratch"]
    qemu_io(disk.path, "qcow2", "write -P 0x7c 0 4k")

    prepare_volumes(vmi(volume, uid="one"), workdir, StorageContext())
    qemu_io(disk.path, "qcow2", "read -P 0x7c 0 4k")

    prepare_volumes(vmi(volume, uid="two"), workdir, StorageContext())
    qemu_io(disk.path, "qcow2", "read -P 0 0 4k")


@pytest.mark.parametrize("capacity", ["", "lots", "100", "-1Gi"])
def test_empty_disk_bad_capacity_names_the_field(workdir, capacity):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.emptyDisk\.capacity: "):
        prepare_one({"name": "scratch", "emptyDisk": {"capacity": capacity}}, workdir, StorageContext())
