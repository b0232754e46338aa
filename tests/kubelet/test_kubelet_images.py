"""Image resolution: our components run from this checkout, other images come from
a local OCI layout, unpacked once, safely."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

from local_cluster.kubelet.images import CHECKOUT_ROOT, ContainerCommandError, ImageResolver, container_argv
from oci_layout.store import (
    MEDIA_CONFIG,
    MEDIA_LAYER_TAR,
    MEDIA_MANIFEST,
    REF_NAME,
    ImageFormatError,
    ImageNotFound,
    add_image,
    find_image,
)
from oci_layout.unpack import UnsafeLayer, unpack_image


def test_component_images_run_this_checkout(tmp_path: Path) -> None:
    resolver = ImageResolver(None, tmp_path)
    for ref, module in [
        ("quay.io/kubevirt-py/virt-handler:v0.1.0", "virt_handler"),
        ("virt-api", "virt_api"),
        ("localhost:5000/a/b/virt-controller@sha256:" + "a" * 64, "virt_controller"),
        ("registry.example/virt-launcher:latest", "virt_launcher"),
        ("virtctl:dev", "virtctl"),
    ]:
        image = resolver.resolve(ref)
        assert image.entrypoint == [sys.executable, "-m", module]
        assert image.rootfs is None
        assert image.env["PYTHONPATH"] == str(CHECKOUT_ROOT)


def test_command_and_args_follow_kubernetes(tmp_path: Path) -> None:
    image = ImageResolver(None, tmp_path).resolve("quay.io/kubevirt-py/virt-handler:v1")
    assert container_argv(image, {}) == [sys.executable, "-m", "virt_handler"]
    assert container_argv(image, {"args": ["--port", "1"]}) == [sys.executable, "-m", "virt_handler", "--port", "1"]
    assert container_argv(image, {"command": ["/bin/true"]}) == ["/bin/true"]
    assert container_argv(image, {"command": ["/bin/echo"], "args": ["x"]}) == ["/bin/echo", "x"]


def test_unknown_image_is_a_clear_pull_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with pytest.raises(ImageNotFound, match=f"image busybox:1 not found in {store}"):
        ImageResolver(store, tmp_path / "cache").resolve("busybox:1")


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\necho tool\n")
    (root / "bin" / "tool").chmod(0o755)
    os.symlink("tool", root / "bin" / "alias")
    (root / "data").mkdir()
    (root / "data" / "disk.img").write_bytes(b"\0" * 4096)
    return root


@pytest.mark.parametrize("compress", [True, False])
def test_add_image_then_resolve_and_unpack(tmp_path: Path, compress: bool) -> None:
    store = tmp_path / "store"
    config = {"Entrypoint": ["/bin/tool"], "Cmd": ["--x"], "Env": ["A=1", "PATH=/bin"], "WorkingDir": "/data"}
    digest = add_image(store, "registry.local/disks/alpine:v2", _tree(tmp_path / "src"), config, compress=compress)
    assert json.loads((store / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    resolver = ImageResolver(store, tmp_path / "cache")
    image = resolver.resolve("registry.local/disks/alpine:v2")
    assert image.entrypoint == ["/bin/tool"] and image.cmd == ["--x"]
    assert image.env == {"A": "1", "PATH": "/bin"} and image.working_dir == "/data"
    assert image.image_id == f"registry.local/disks/alpine@{digest}"
    assert image.rootfs == tmp_path / "cache" / digest.split(":")[1] / "rootfs"
    assert (image.rootfs / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert os.readlink(image.rootfs / "bin" / "alias") == "tool"
    assert (image.rootfs / "data" / "disk.img").stat().st_size == 4096
    # Once unpacked, the cache is reused (no second unpack: the marker survives).
    (image.rootfs / "marker").write_text("x")
    assert (resolver.resolve("registry.local/disks/alpine:v2").rootfs / "marker").exists()


def test_lookup_accepts_tag_only_annotations_as_upstream_tools_write(tmp_path: Path) -> None:
    store = tmp_path / "store"
    digest = add_image(store, "v3", _tree(tmp_path / "src"), {"Cmd": ["/bin/tool"]})
    assert find_image(store, "quay.io/someone/thing:v3").manifest_digest == digest
    assert find_image(store, f"quay.io/someone/thing@{digest}").manifest_digest == digest
    with pytest.raises(ImageNotFound):
        find_image(store, "quay.io/someone/thing:v4")


def test_full_reference_wins_over_tag_and_docker_hub_names_normalise(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = add_image(store, "docker.io/library/busybox:1.36", _tree(tmp_path / "a"), {"Cmd": ["a"]})
    add_image(store, "1.36", _tree(tmp_path / "b"), {"Cmd": ["b"]})
    assert find_image(store, "busybox:1.36").manifest_digest == first
    assert find_image(store, "docker.io/busybox:1.36").manifest_digest == first


def _layout_with_layers(store: Path, ref: str, layers: list[bytes]) -> None:
    """A hand-made layout, for layers add_image would never produce."""
    blobs = store / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(raw: bytes) -> dict[str, object]:
        digest = hashlib.sha256(raw).hexdigest()
        (blobs / digest).write_bytes(raw)
        return {"digest": f"sha256:{digest}", "size": len(raw)}

    config = blob(json.dumps({"config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers"}}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, **config},
        "layers": [{"mediaType": MEDIA_LAYER_TAR, **blob(layer)} for layer in layers],
    }
    descriptor = {"mediaType": MEDIA_MANIFEST, **blob(json.dumps(manifest).encode()), "annotations": {REF_NAME: ref}}
    (store / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    (store / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def _tar(*members: tuple[str, str, str | bytes]) -> bytes:
    """members: (kind, name, content-or-linkname); kind is file, dir, symlink or hardlink."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for kind, name, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = value if isinstance(value, bytes) else value.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            info.mode = 0o755
            info.linkname = str(value)
            tar.addfile(info)
    return out.getvalue()


def test_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    store = tmp_path / "store"
    lower = _tar(
        ("dir", "etc", ""),
        ("file", "etc/keep", "k"),
        ("file", "etc/gone", "g"),
        ("dir", "var", ""),
        ("file", "var/old", "o"),
    )
    upper = _tar(
        ("file", "etc/.wh.gone", ""),
        ("dir", "var", ""),
        ("file", "var/new", "n"),
        ("file", "var/.wh..wh..opq", ""),
    )
    _layout_with_layers(store, "layered:1", [lower, upper])
    rootfs = unpack_image(find_image(store, "layered:1"), tmp_path / "cache")
    assert sorted(p.name for p in (rootfs / "etc").iterdir()) == ["keep"]
    assert sorted(p.name for p in (rootfs / "var").iterdir()) == ["new"]


@pytest.mark.parametrize(
    "members",
    [
        [("file", "../../etc/x", "escape")],
        [("file", "/etc/x", "absolute")],
        [("hardlink", "passwd", "/etc/passwd")],
        [("hardlink", "passwd", "../../../etc/passwd")],
    ],
    ids=["dotdot", "absolute", "hardlink-absolute", "hardlink-dotdot"],
)
def test_layer_members_that_escape_are_rejected(tmp_path: Path, members: list[tuple[str, str, str]]) -> None:
    store = tmp_path / "store"
    _layout_with_layers(store, "evil:1", [_tar(*members)])
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeLayer):
        unpack_image(find_image(store, "evil:1"), cache)
    # Nothing half-unpacked is left under the digest.
    assert [p for p in cache.iterdir() if not p.name.startswith(".")] == []


def test_symlink_tricks_stay_inside_the_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = tmp_path / "store"
    first = _tar(("symlink", "etc", "/"), ("symlink", "up", "../../../../.."), ("symlink", "abs", str(outside)))
    second = _tar(("file", "etc/evil", "1"), ("file", "up/evil2", "2"), ("file", "abs/evil3", "3"))
    _layout_with_layers(store, "tricky:1", [first, second])
    rootfs = unpack_image(find_image(store, "tricky:1"), tmp_path / "cache")
    assert (rootfs / "evil").read_text() == "1"
    assert (rootfs / "evil2").read_text() == "2"
    assert (rootfs / outside.relative_to("/") / "evil3").read_text() == "3"
    assert list(outside.iterdir()) == []
    assert not Path("/evil").exists()


def test_corrupt_layer_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    add_image(store, "x:1", _tree(tmp_path / "src"), {"Cmd": ["/bin/tool"]}, compress=False)
    image = find_image(store, "x:1")
    layer = store / "blobs" / "sha256" / image.layers[0]["digest"].split(":")[1]
    raw = bytearray(layer.read_bytes())
    raw[-1] ^= 0xFF  # in the tar's zero padding: still a valid tar, wrong digest
    layer.write_bytes(bytes(raw))
    with pytest.raises(ImageFormatError, match="does not match its digest"):
        unpack_image(image, tmp_path / "cache")


def test_image_without_a_command_is_a_config_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    add_image(store, "empty:1", _tree(tmp_path / "src"), {})
    image = ImageResolver(store, tmp_path / "cache").resolve("empty:1")
    with pytest.raises(ContainerCommandError):
        container_argv(image, {"name": "c"})
