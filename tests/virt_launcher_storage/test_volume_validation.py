"""The spec as a whole: names, sources, unsupported types, the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from virt_launcher.storage import ClaimMount, StorageContext, StorageError, UnsupportedVolume, prepare_volumes

from .helpers import vmi

EMPTY = {"emptyDisk": {"capacity": "1Mi"}}


@pytest.mark.parametrize("kind, source", [
    ("dataVolume", {"name": "dv"}),
    ("serviceAccount", {"serviceAccountName": "default"}),
    ("downwardAPI", {"fields": []}),
    ("sysprep", {"secret": {"name": "x"}}),
    ("memoryDump", {"claimName": "dump"}),
])
def test_unsupported_types_name_the_field(workdir, kind, source):
    spec = vmi({"name": "ok", **EMPTY}, {"name": "ok2", **EMPTY}, {"name": "other", kind: source})
    with pytest.raises(UnsupportedVolume) as caught:
        prepare_volumes(spec, workdir, StorageContext())
    assert str(caught.value) == f"spec.volumes[2].{kind}: {kind} volumes are not supported yet"
    assert caught.value.field == f"spec.volumes[2].{kind}"
    assert isinstance(caught.value, StorageError)
    # Checked before anything is prepared: the supported volumes before it left nothing behind.
    assert not workdir.exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "UPPER", "x" * 64, "", None, "-dash"])
def test_invalid_volume_names_are_refused_before_use(tmp_path, workdir, name):
    with pytest.raises(StorageError) as caught:
        prepare_volumes(vmi({"name": name, **EMPTY}), workdir, StorageContext())
    assert str(caught.value).startswith("spec.volumes[0].name: ")
    assert not workdir.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_duplicate_names(workdir):
    expected = r"^spec\.volumes\[1\]\.name: 'disk' is already the name of spec\.volumes\[0\]"
    with pytest.raises(StorageError, match=expected):
        prepare_volumes(vmi({"name": "disk", **EMPTY}, {"name": "disk", **EMPTY}), workdir, StorageContext())


def test_a_volume_needs_exactly_one_source(workdir):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]: volume 'disk' has no source"):
        prepare_volumes(vmi({"name": "disk"}), workdir, StorageContext())
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]: volume 'disk' sets more than one source"):
        prepare_volumes(vmi({"name": "disk", **EMPTY, "hostDisk": {"path": "/x", "type": "Disk"}}), workdir,
                        StorageContext())


def test_planted_symlink_in_the_working_directory_is_not_written_through(tmp_path, workdir):
    workdir.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    (workdir / "disk.qcow2").symlink_to(victim)
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.emptyDisk: .* not a regular file"):
        prepare_volumes(vmi({"name": "disk", **EMPTY}), workdir, StorageContext())
    assert victim.read_bytes() == b"untouched"


def test_every_volume_is_prepared_and_keyed_by_name(node: Path, workdir):
    mount = node / "pvc"
    mount.mkdir()
    context = StorageContext(claims={"data": ClaimMount(mount, "Filesystem", 1 << 20)})
    disks = prepare_volumes(
        vmi(
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "scratch", **EMPTY},
            {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}},
        ),
        workdir,
        context,
    )
    assert list(disks) == ["data", "scratch", "cloudinit"]
    assert [d.name for d in disks.values()] == list(disks)
    assert all(d.path.exists() for d in disks.values())
    # Nothing but our files, and no temporaries, in the working directory.
    assert sorted(p.name for p in workdir.iterdir()) == [".storage-owner", "cloudinit.iso", "scratch.qcow2"]


def test_no_volumes(workdir):
    assert prepare_volumes(vmi(), workdir, StorageContext()) == {}
