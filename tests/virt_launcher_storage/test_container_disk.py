"""containerDisk: OCI image lookup, disk file location, qcow2 overlay, base never written."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from oci_layout.store import add_image
from virt_launcher.storage import StorageContext, StorageError, prepare_volumes, qemu_img
from virt_launcher.storage.container_base import RECORDS_DIR
from virt_launcher.storage.qemu_img import image_info

from .helpers import prepare_one, qemu_io, sha256, vmi

MIB = 1 << 20


def raw_disk(path: Path, size: int = MIB, fill: int = 0x11) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([fill]) * size)
    return path


def qcow2_disk(path: Path, size: int = MIB) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(size)], check=True)
    qemu_io(path, "qcow2", "write -P 0x22 0 64k")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "oci"


@pytest.fixture
def context(store: Path, tmp_path: Path) -> StorageContext:
    return StorageContext(image_store=store, image_cache=tmp_path / "image-cache")


def image(store: Path, tmp_path: Path, ref: str, build) -> str:
    root = tmp_path / ("root-" + ref.replace("/", "_").replace(":", "_"))
    root.mkdir()
    build(root)
    add_image(store, ref, root, compress=False)
    return ref


def container_disk(image_ref: str, name: str = "rootdisk", **extra) -> dict:
    return {"name": name, "containerDisk": {"image": image_ref, **extra}}


def test_raw_base_gets_qcow2_overlay_and_base_is_never_written(store, context, tmp_path, workdir):
    ref = image(store, tmp_path, "example.com/vm/raw:1", lambda root: raw_disk(root / "disk" / "disk.img"))

    disk = prepare_one(container_disk(ref), workdir, context)

    assert disk.format == "qcow2" and disk.type == "file" and not disk.read_only
    assert disk.path == workdir.resolve() / "rootdisk.qcow2"
    assert disk.backing is not None and disk.backing.is_relative_to(context.image_cache)
    info = image_info(disk.path)
    assert info.format == "qcow2" and info.backing_file == str(disk.backing)
    assert info.virtual_size == MIB
    before = sha256(disk.backing)

    qemu_io(disk.path, "qcow2", "write -P 0xab 0 64k")
    qemu_io(disk.path, "qcow2", "write -P 0xcd 900k 4k")

    qemu_io(disk.path, "qcow2", "read -P 0xab 0 64k")
    qemu_io(disk.path, "qcow2", "read -P 0x11 64k 64k")  # unwritten clusters read through to the base
    assert sha256(disk.backing) == before
    assert disk.backing.read_bytes() == bytes([0x11]) * MIB
    assert stat.S_IMODE(os.stat(disk.backing).st_mode) & 0o222 == 0


def test_qcow2_base_is_detected_and_pinned_in_the_overlay(store, context, tmp_path, workdir):
    ref = image(store, tmp_path, "example.com/vm/qcow:1", lambda root: qcow2_disk(root / "disk" / "image.qcow2"))

    disk = prepare_one(container_disk(ref), workdir, context)

    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", str(disk.path)], capture_output=True, text=True)
    assert '"backing-filename-format": "qcow2"' in out.stdout
    before = sha256(disk.backing)
    qemu_io(disk.path, "qcow2", "read -P 0x22 0 64k")
    qemu_io(disk.path, "qcow2", "write -P 0x33 0 64k")
    qemu_io(disk.path, "qcow2", "read -P 0x33 0 64k")
    assert sha256(disk.backing) == before
    qemu_io(disk.backing, "qcow2", "read -P 0x22 0 64k")


def test_spec_path_selects_the_disk_file(store, context, tmp_path, workdir):
    def build(root: Path) -> None:
        raw_disk(root / "custom" / "boot.img", fill=0x44)
        raw_disk(root / "disk" / "other.img")

    ref = image(store, tmp_path, "example.com/vm/custom:1", build)
    disk = prepare_one(container_disk(ref, path="/custom/boot.img"), workdir, context)
    assert disk.backing.name == "boot.img"
    qemu_io(disk.path, "qcow2", "read -P 0x44 0 4k")


def test_unpacked_base_is_shared_across_vmis_by_digest(store, context, tmp_path):
    ref = image(store, tmp_path, "example.com/vm/shared:1", lambda root: raw_disk(root / "disk" / "disk.img"))

    first = prepare_volumes(vmi(container_disk(ref), name="a", uid="uid-a"), tmp_path / "w-a", context)["rootdisk"]
    second = prepare_volumes(vmi(container_disk(ref), name="b", uid="uid-b"), tmp_path / "w-b", context)["rootdisk"]

    assert first.backing == second.backing
    assert first.path != second.path
    assert len([p for p in context.image_cache.iterdir() if not p.name.startswith(".")]) == 1
    qemu_io(first.path, "qcow2", "write -P 0x55 0 4k")
    qemu_io(second.path, "qcow2", "read -P 0x11 0 4k")  # one VMI's writes never reach another


def test_same_vmi_keeps_its_overlay_and_another_vmi_gets_a_fresh_one(store, context, tmp_path, workdir):
    ref = image(store, tmp_path, "example.com/vm/keep:1", lambda root: raw_disk(root / "disk" / "disk.img"))
    volume = container_disk(ref)

    disk = prepare_volumes(vmi(volume, uid="uid-1"), workdir, context)["rootdisk"]
    qemu_io(disk.path, "qcow2", "write -P 0x66 0 4k")
    again = prepare_volumes(vmi(volume, uid="uid-1"), workdir, context)["rootdisk"]
    qemu_io(again.path, "qcow2", "read -P 0x66 0 4k")

    fresh = prepare_volumes(vmi(volume, uid="uid-2"), workdir, context)["rootdisk"]
    qemu_io(fresh.path, "qcow2", "read -P 0x11 0 4k")


def test_unknown_image_names_the_image_field(store, context, tmp_path, workdir):
    image(store, tmp_path, "example.com/vm/present:1", lambda root: raw_disk(root / "disk" / "disk.img"))
    with pytest.raises(StorageError) as caught:
        prepare_one(container_disk("example.com/vm/absent:1"), workdir, context)
    assert str(caught.value).startswith("spec.volumes[0].containerDisk.image: ")
    assert "absent" in str(caught.value)


def test_several_files_in_disk_dir_need_a_path(store, context, tmp_path, workdir):
    def build(root: Path) -> None:
        raw_disk(root / "disk" / "a.img")
        raw_disk(root / "disk" / "b.img")

    ref = image(store, tmp_path, "example.com/vm/two:1", build)
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.containerDisk\.path: .*a\.img, b\.img"):
        prepare_one(container_disk(ref), workdir, context)


def test_empty_disk_dir_is_refused(store, context, tmp_path, workdir):
    ref = image(store, tmp_path, "example.com/vm/none:1", lambda root: (root / "disk").mkdir())
    with pytest.raises(StorageError, match=r"containerDisk\.path: image has no file in /disk"):
        prepare_one(container_disk(ref), workdir, context)


def test_path_escapes_are_refused(store, context, tmp_path, workdir):
    def build(root: Path) -> None:
        raw_disk(root / "disk" / "disk.img")
        (root / "escape").mkdir()
        # Resolved inside the image, this names <rootfs>/etc/hostname, which the image lacks.
        (root / "escape" / "host.img").symlink_to("/etc/hostname")

    ref = image(store, tmp_path, "example.com/vm/escape:1", build)
    with pytest.raises(StorageError, match=r"containerDisk\.path: .*must not contain '\.\.'"):
        prepare_one(container_disk(ref, path="/disk/../../../etc/hostname"), workdir, context)
    with pytest.raises(StorageError, match=r"containerDisk\.path: '/escape/host\.img' does not exist in the image"):
        prepare_one(container_disk(ref, path="/escape/host.img"), workdir, context)


def test_qcow2_base_with_backing_file_is_refused(store, context, tmp_path, workdir):
    secret = raw_disk(tmp_path / "node-secret.img", fill=0x77)

    def build(root: Path) -> None:
        target = root / "disk" / "evil.qcow2"
        target.parent.mkdir()
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(target)], check=True
        )

    ref = image(store, tmp_path, "example.com/vm/evil:1", build)
    with pytest.raises(StorageError, match=r"containerDisk\.image: .*backing file"):
        prepare_one(container_disk(ref), workdir, context)


def test_the_second_vmi_of_an_image_runs_no_qemu_img_and_gets_the_same_overlay(store, context, tmp_path, monkeypatch):
    ref = image(store, tmp_path, "example.com/vm/record:1", lambda root: raw_disk(root / "disk" / "disk.img"))
    first = prepare_volumes(vmi(container_disk(ref), name="a", uid="uid-a"), tmp_path / "w-a", context)["rootdisk"]
    runs: list[list[str]] = []
    real_run = qemu_img._run
    monkeypatch.setattr(qemu_img, "_run", lambda args: runs.append(args) or real_run(args))

    second = prepare_volumes(vmi(container_disk(ref), name="b", uid="uid-b"), tmp_path / "w-b", context)["rootdisk"]

    assert runs == []
    assert second.path.read_bytes() == first.path.read_bytes()
    info = image_info(second.path)
    assert (info.format, info.backing_file) == ("qcow2", str(second.backing))
    qemu_io(second.path, "qcow2", "read -P 0x11 0 4k")


def test_a_broken_base_record_is_not_used(store, context, tmp_path, workdir):
    ref = image(store, tmp_path, "example.com/vm/broken:1", lambda root: raw_disk(root / "disk" / "disk.img"))
    prepare_volumes(vmi(container_disk(ref), uid="uid-a"), tmp_path / "w-a", context)
    [record] = context.image_cache.glob(f"*/{RECORDS_DIR}/*")
    (record / "format").write_text("vmdk")
    (record / "overlay.qcow2").write_bytes(b"not a qcow2")

    disk = prepare_one(container_disk(ref), workdir, context, uid="uid-b")

    assert image_info(disk.path).backing_file == str(disk.backing)
    qemu_io(disk.path, "qcow2", "read -P 0x11 0 4k")
