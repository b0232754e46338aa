"""hostDisk: Disk / DiskOrCreate below allowlisted directories only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virt_launcher.storage import StorageContext, StorageError

from .helpers import prepare_one

MIB = 1 << 20


def host_disk(path: str, disk_type: str = "Disk", **extra) -> dict:
    return {"name": "hostdisk", "hostDisk": {"path": path, "type": disk_type, **extra}}


@pytest.fixture
def base(node: Path) -> Path:
    path = node / "host-disks"
    path.mkdir()
    return path


@pytest.fixture
def context(base: Path) -> StorageContext:
    return StorageContext(host_disk_bases=[base])


def test_existing_disk_is_used_as_it_is(base, context, workdir):
    image = base / "vm1" / "disk.img"
    image.parent.mkdir()
    image.write_bytes(b"\x09" * 4096)
    disk = prepare_one(host_disk(str(image), capacity="1Gi", shared=True), workdir, context)
    assert (disk.path, disk.format, disk.type, disk.read_only, disk.shared) == (
        image.resolve(), "raw", "file", False, True,
    )
    assert image.read_bytes() == b"\x09" * 4096


def test_disk_type_requires_an_existing_file(base, context, workdir):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.hostDisk\.path: .*does not exist"):
        prepare_one(host_disk(str(base / "missing.img")), workdir, context)
    assert not (base / "missing.img").exists()


def test_disk_or_create_makes_parents_and_a_sparse_file_once(base, context, workdir):
    image = base / "a" / "b" / "disk.img"
    disk = prepare_one(host_disk(str(image), "DiskOrCreate", capacity="16Mi"), workdir, context)
    assert disk.path == image.resolve()
    assert os.stat(image).st_size == 16 * MIB and os.stat(image).st_blocks * 512 < MIB
    with open(image, "r+b") as guest:
        guest.write(b"keep me")
    prepare_one(host_disk(str(image), "DiskOrCreate", capacity="1Mi"), workdir, context, uid="later")
    assert os.stat(image).st_size == 16 * MIB
    assert image.read_bytes()[:7] == b"keep me"


def test_disk_or_create_needs_a_capacity(base, context, workdir):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.hostDisk\.capacity: "):
        prepare_one(host_disk(str(base / "new.img"), "DiskOrCreate"), workdir, context)


@pytest.mark.parametrize("path, complaint", [
    ("relative/disk.img", "must be an absolute path"),
    ("/etc/passwd", "is not below an allowed host disk directory"),
    ("{base}/../escape.img", "must not contain '..'"),
    ("{base}", "is not below an allowed host disk directory"),
])
def test_paths_outside_the_allowlist_are_refused(base, context, workdir, path, complaint):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.hostDisk\.path: ") as caught:
        prepare_one(host_disk(path.format(base=base), "DiskOrCreate", capacity="1Mi"), workdir, context)
    assert complaint in str(caught.value)


def test_symlink_escapes_are_refused(base, context, node, workdir):
    outside = node / "outside"
    outside.mkdir()
    (outside / "victim.img").write_bytes(b"victim")
    (base / "link-dir").symlink_to(outside)
    (base / "link-file.img").symlink_to(outside / "victim.img")

    for path in (base / "link-dir" / "victim.img", base / "link-file.img", base / "link-dir" / "new" / "x.img"):
        with pytest.raises(StorageError, match=r"hostDisk\.path: .*not below an allowed host disk directory"):
            prepare_one(host_disk(str(path), "DiskOrCreate", capacity="1Mi"), workdir, context)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.img"]
    assert (outside / "victim.img").read_bytes() == b"victim"


def test_symlink_within_the_base_is_followed(base, context, workdir):
    (base / "real").mkdir()
    (base / "real" / "disk.img").write_bytes(b"\x00" * 512)
    (base / "alias").symlink_to(base / "real")
    disk = prepare_one(host_disk(str(base / "alias" / "disk.img")), workdir, context)
    assert disk.path == (base / "real" / "disk.img").resolve()


def test_no_allowlist_means_no_host_disks(base, workdir):
    with pytest.raises(StorageError, match=r"hostDisk\.path: hostDisk is not allowed on this node"):
        prepare_one(host_disk(str(base / "x.img"), "DiskOrCreate", capacity="1Mi"), workdir, StorageContext())


def test_directory_is_not_a_disk(base, context, workdir):
    (base / "dir").mkdir()
    with pytest.raises(StorageError, match=r"hostDisk\.path: .*is not a regular file"):
        prepare_one(host_disk(str(base / "dir")), workdir, context)


def test_unknown_type_names_the_type_field(base, context, workdir):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.hostDisk\.type: "):
        prepare_one(host_disk(str(base / "x.img"), "Directory"), workdir, context)
