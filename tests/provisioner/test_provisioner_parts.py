"""The provisioner's disk handling and work queue on their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local_cluster.provisioner.claims import persistent_volume, unsupported
from local_cluster.provisioner.volumes import LocalVolumes, UnsafePath
from local_cluster.provisioner.workqueue import WorkQueue


def test_only_entries_strictly_inside_the_root_are_touched(tmp_path: Path) -> None:
    local = LocalVolumes(tmp_path / "root")
    outside = tmp_path / "outside"
    outside.mkdir()
    (local.root / "escape").symlink_to(outside)
    (local.root / "link-to-file").symlink_to(outside / "f")
    refused = ["", "relative/path", str(local.root), str(local.root) + "/", str(local.root / ".."),
               str(local.root / "pvc-1" / ".."), str(outside), str(local.root / "escape" / "x"),
               str(local.root / "link-to-file"), "/etc/passwd"]
    for path in refused:
        with pytest.raises(UnsafePath):
            local.remove(path)
    assert outside.is_dir()
    inside = local.path_for("pvc-1", "ns", "claim")
    local.create_directory(inside)
    assert inside.is_dir() and (inside.stat().st_mode & 0o777) == 0o777
    local.remove(str(local.root / "x" / ".." / inside.name))  # normalized, it is inside
    assert not inside.exists()


def test_disk_images_grow_but_never_shrink(tmp_path: Path) -> None:
    local = LocalVolumes(tmp_path)
    image = local.path_for("pvc-2", "ns", "disk")
    local.create_disk_image(image, 1 << 20)
    with open(image, "r+b") as handle:
        handle.write(b"boot")
    local.create_disk_image(image, 1 << 10)
    assert os.path.getsize(image) == 1 << 20 and image.read_bytes()[:4] == b"boot"
    local.create_disk_image(image, 2 << 20)
    assert os.path.getsize(image) == 2 << 20


def test_claims_the_provisioner_cannot_serve() -> None:
    def claim(**spec: object) -> dict:
        return {"metadata": {"name": "c", "namespace": "n", "uid": "u"}, "spec": spec}
    assert unsupported(claim()) is not None
    assert unsupported(claim(resources={"requests": {"storage": "0"}})) is not None
    assert unsupported(claim(resources={"requests": {"storage": "lots"}})) is not None
    assert unsupported(claim(resources={"requests": {"storage": "1Gi"}}, selector={"matchLabels": {}})) is None
    assert unsupported(claim(resources={"requests": {"storage": "1Gi"}}, selector={"matchLabels": {"a": "b"}}))
    assert unsupported(claim(resources={"requests": {"storage": "1Gi"}}, dataSource={"kind": "PVC"}))
    volume = persistent_volume(claim(resources={"requests": {"storage": "1Gi"}}), Path("/r/pvc-u_n_c"))
    assert volume["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert volume["metadata"]["name"] == "pvc-u"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_work_queue_hands_each_key_out_once_and_backs_off() -> None:
    clock = _Clock()
    queue = WorkQueue(initial_backoff=1.0, max_backoff=4.0, clock=clock)
    queue.add("a")
    queue.add("a")
    assert queue.get(0) == "a"
    queue.add("a")  # changed while being worked on: handed out again after done
    assert queue.get(0) is None
    queue.done("a")
    assert queue.get(0) == "a"
    assert [queue.retry("a") for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    queue.done("a")
    assert queue.get(0) is None
    clock.now += 1.0
    assert queue.get(0) == "a"
    queue.forget("a")
    assert queue.retry("a") == 1.0
    queue.close()
    assert queue.get(10) is None
