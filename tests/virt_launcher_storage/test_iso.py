"""ISO images of file trees (virt_launcher/storage/iso.py) read back: the primary tree,
Joliet and Rock Ridge agree on every file, at any size of directory or name. Real guests
mount these images in tests/virt_launcher."""

from __future__ import annotations

from pathlib import Path

import pycdlib

from virt_launcher.storage.iso import write_iso

from .helpers import iso_joliet_files, iso_label, iso_rock_ridge_files

SECTOR = 2048


def _write(tmp_path: Path, files: dict[str, bytes], label: str = "cidata") -> Path:
    path = tmp_path / "image.iso"
    write_iso(path, label, files)
    return path


def test_descriptors_and_size_are_those_of_a_joliet_volume(tmp_path: Path) -> None:
    path = _write(tmp_path, {"user-data": b"#!/bin/sh\n", "meta-data": b"{}\n"})
    data = path.read_bytes()
    assert len(data) % SECTOR == 0
    primary, joliet, terminator = (data[sector * SECTOR:(sector + 1) * SECTOR] for sector in (16, 17, 18))
    assert primary[:6] == b"\x01CD001" and joliet[:6] == b"\x02CD001" and terminator[:6] == b"\xffCD001"
    assert joliet[88:91] == b"%/E"
    assert int.from_bytes(primary[80:84], "little") == len(data) // SECTOR
    # What blkid and the tiny guest read as the label, and where they read it.
    assert data[32808:32808 + 32].rstrip(b" ") == b"cidata"
    assert iso_label(path) == "cidata"


def test_nested_directories_and_empty_files(tmp_path: Path) -> None:
    files = {"openstack/latest/meta_data.json": b"{}", "openstack/latest/user_data": b"x" * 5000,
             "openstack/content/0000": b"", "a/b/c/d/e/f/g/deep": b"deep"}
    path = _write(tmp_path, files, label="config-2")
    expected = {f"/{name}": content for name, content in files.items()}
    assert iso_rock_ridge_files(path) == expected
    assert iso_joliet_files(path) == expected


def test_hundreds_of_long_names_span_sectors_and_continuation_areas(tmp_path: Path) -> None:
    # 253 characters is the longest ConfigMap key: its Rock Ridge name does not fit in
    # its directory record and moves to a continuation area; 300 of them fill several
    # sectors of directory and of continuation.
    files = {f"{index:03d}" + "k" * 250: f"value {index}".encode() for index in range(300)}
    files["short"] = b"s"
    path = _write(tmp_path, files)
    assert iso_rock_ridge_files(path) == {f"/{name}": content for name, content in files.items()}
    joliet = iso_joliet_files(path)
    # Joliet keeps 64 characters of a name; the contents all stay reachable and distinct.
    assert sorted(joliet.values()) == sorted(files.values())
    assert all(len(name) <= 65 for name in joliet)


def test_the_plain_iso9660_names_are_unique_8_3_names(tmp_path: Path) -> None:
    files = {"tls.key": b"1", "tls.KEY": b"2", "ca-bundle.crt": b"3", "ca_bundle.crt": b"4"}
    path = _write(tmp_path, files)
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        names = [child.file_identifier().decode() for child in iso.list_children(iso_path="/")
                 if not (child.is_dot() or child.is_dotdot())]
    finally:
        iso.close()
    assert len(names) == len(set(names)) == 4
    assert all(len(name.split(";")[0].split(".")[0]) <= 8 for name in names)
    assert iso_rock_ridge_files(path) == {f"/{name}": content for name, content in files.items()}


def test_an_empty_tree_is_a_valid_volume(tmp_path: Path) -> None:
    path = _write(tmp_path, {}, label="cfgdata")
    assert iso_label(path) == "cfgdata"
    assert iso_rock_ridge_files(path) == {} and iso_joliet_files(path) == {}
