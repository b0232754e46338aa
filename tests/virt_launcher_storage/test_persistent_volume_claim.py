"""persistentVolumeClaim: disk.img created sparse once and never truncated; Block claims used directly."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from virt_launcher.storage import ClaimMount, StorageContext, StorageError, prepare_volumes

from .helpers import prepare_one, qemu_io, vmi

MIB = 1 << 20


def claim_volume(claim: str = "data", name: str = "datadisk", **extra) -> dict:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim, **extra}}


def filesystem_claim(node: Path, capacity: int = 8 * MIB, **extra) -> tuple[Path, StorageContext]:
    mount = node / "pvc-data"
    mount.mkdir()
    return mount, StorageContext(claims={"data": ClaimMount(mount, "Filesystem", capacity, **extra)})


def test_filesystem_claim_gets_a_sparse_disk_img_of_its_capacity(node, workdir):
    mount, context = filesystem_claim(node, capacity=8 * MIB + 100)

    disk = prepare_one(claim_volume(), workdir, context)

    assert disk.path == mount.resolve() / "disk.img"
    assert (disk.format, disk.type, disk.read_only) == ("raw", "file", False)
    info = os.stat(disk.path)
    assert info.st_size == 8 * MIB  # whole sectors, never more than the claim
    assert info.st_blocks * 512 < MIB  # sparse
    assert not [p for p in mount.iterdir() if p.name != "disk.img"]  # no temporary left behind


def test_disk_img_is_created_once_and_never_truncated(node, workdir):
    mount, context = filesystem_claim(node, capacity=8 * MIB)
    volume = claim_volume()
    disk = prepare_one(volume, workdir, context)
    qemu_io(disk.path, "raw", "write -P 0xa5 1M 64k")
    with open(disk.path, "r+b") as guest:
        guest.seek(7 * MIB)
        guest.write(b"persisted")

    # The VM restarts (a new VMI), and later the claim is reported with another capacity.
    again = prepare_volumes(vmi(volume, uid="second-run"), workdir, context)["datadisk"]
    bigger = StorageContext(claims={"data": ClaimMount(mount, "Filesystem", 32 * MIB)})
    smaller = StorageContext(claims={"data": ClaimMount(mount, "Filesystem", 1 * MIB)})
    prepare_volumes(vmi(volume, uid="third-run"), workdir, bigger)
    prepare_volumes(vmi(volume, uid="fourth-run"), workdir, smaller)

    assert again.path == disk.path
    assert os.stat(disk.path).st_size == 8 * MIB
    qemu_io(disk.path, "raw", "read -P 0xa5 1M 64k")
    with open(disk.path, "rb") as guest:
        guest.seek(7 * MIB)
        assert guest.read(9) == b"persisted"


def test_existing_disk_img_is_used_as_it_is(node, workdir):
    mount, context = filesystem_claim(node, capacity=8 * MIB)
    (mount / "disk.img").write_bytes(b"\x01" * 4096)
    disk = prepare_one(claim_volume(), workdir, context)
    assert disk.path.read_bytes() == b"\x01" * 4096


def test_read_only_claim(node, workdir):
    mount, context = filesystem_claim(node)
    (mount / "disk.img").write_bytes(b"\x00" * 4096)
    assert prepare_one(claim_volume(readOnly=True), workdir, context).read_only
    mounted_ro = StorageContext(claims={"data": ClaimMount(mount, "Filesystem", MIB, read_only=True)})
    assert prepare_one(claim_volume(), workdir, mounted_ro).read_only


def test_read_only_claim_without_disk_img_is_refused(node, workdir):
    _, context = filesystem_claim(node)
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.persistentVolumeClaim\.readOnly: "):
        prepare_one(claim_volume(readOnly=True), workdir, context)


def test_unknown_claim_names_claim_name(node, workdir):
    _, context = filesystem_claim(node)
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.persistentVolumeClaim\.claimName: .*'other'"):
        prepare_one(claim_volume("other"), workdir, context)


def test_unknown_capacity_is_refused_when_disk_img_must_be_created(node, workdir):
    mount = node / "pvc"
    mount.mkdir()
    context = StorageContext(claims={"data": ClaimMount(mount, "Filesystem", None)})
    with pytest.raises(StorageError, match=r"claimName: the claim's capacity is unknown"):
        prepare_one(claim_volume(), workdir, context)


def test_disk_img_symlink_out_of_the_claim_is_refused(node, workdir):
    mount, context = filesystem_claim(node)
    outside = node / "host-file"
    outside.write_bytes(b"host data")
    (mount / "disk.img").symlink_to(outside)
    with pytest.raises(StorageError, match=r"persistentVolumeClaim\.claimName: disk\.img .* symlink leading out"):
        prepare_one(claim_volume(), workdir, context)
    assert outside.read_bytes() == b"host data"


def test_dangling_disk_img_symlink_is_never_written_through(node, workdir):
    mount, context = filesystem_claim(node)
    target = node / "would-be-created"
    (mount / "disk.img").symlink_to(target)
    with pytest.raises(StorageError, match=r"claimName: disk\.img .*symlink leading out"):
        prepare_one(claim_volume(), workdir, context)
    assert not target.exists()


def test_disk_img_symlink_inside_the_claim_is_followed(node, workdir):
    mount, context = filesystem_claim(node)
    (mount / "images").mkdir()
    (mount / "images" / "real.img").write_bytes(b"\x02" * 512)
    (mount / "disk.img").symlink_to("images/real.img")
    disk = prepare_one(claim_volume(), workdir, context)
    assert disk.path == (mount / "images" / "real.img").resolve()


def test_block_claim_file_is_used_directly(node, workdir):
    device = node / "pvc-block"
    device.write_bytes(b"\x03" * 4096)
    context = StorageContext(claims={"data": ClaimMount(device, "Block", 4096)})
    disk = prepare_one(claim_volume(readOnly=True), workdir, context)
    assert (disk.path, disk.format, disk.type, disk.read_only) == (device.resolve(), "raw", "file", True)
    assert device.read_bytes() == b"\x03" * 4096


def test_block_claim_on_a_block_device_has_type_block(node, workdir):
    device = node / "blockdev"
    try:
        # Only stat()ed, never opened: any device number does.
        os.mknod(device, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    except PermissionError:
        pytest.skip("creating a block device node needs CAP_MKNOD")
    context = StorageContext(claims={"data": ClaimMount(device, "Block", None)})
    disk = prepare_one(claim_volume(readOnly=True), workdir, context)
    assert (disk.path, disk.type, disk.format) == (device.resolve(), "block", "raw")


def test_block_claim_that_is_a_directory_is_refused(node, workdir):
    context = StorageContext(claims={"data": ClaimMount(node, "Block", None)})
    with pytest.raises(StorageError, match=r"claimName: the claim's device .* neither a block device nor a file"):
        prepare_one(claim_volume(), workdir, context)
