"""Pod volumes on the node, and container environments, without running anything."""

from __future__ import annotations

import base64
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from local_cluster.kubelet.downward import PodAddresses
from local_cluster.kubelet.env import EnvError, container_env
from local_cluster.kubelet.ip_allocator import LoopbackIPAllocator
from local_cluster.kubelet.pod_sources import ClaimVolume, PodSources, pod_references
from local_cluster.kubelet.sandbox import MountConfigError, container_mounts
from local_cluster.kubelet.volumes import VolumeError, prepare_volumes

ADDRESSES = PodAddresses(pod_ip="127.7.0.2", host_ip="127.7.0.1", node_name="node-1")


def _pod(volumes: list[dict[str, Any]], **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "ns1", "uid": "uid-1", "labels": {"b": "2", "a": "1"}},
        "spec": {
            "nodeName": "node-1",
            "serviceAccountName": "sa",
            "volumes": volumes,
            "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}, **container}],
        },
    }


def _config_map(name: str, data: dict[str, str], binary: dict[str, bytes] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name}, "data": data}
    if binary:
        obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return obj


def _secret(name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_config_map_items_modes_and_binary_data(tmp_path: Path) -> None:
    sources = PodSources(config_maps={"cm": _config_map("cm", {"a": "alpha", "b": "beta"}, {"bin": b"\x00\x01"})})
    volumes = [
        {"name": "all", "configMap": {"name": "cm"}},
        {"name": "some", "configMap": {"name": "cm", "defaultMode": 0o600, "items": [
            {"key": "a", "path": "sub/dir/a.txt"}, {"key": "b", "path": "b.txt", "mode": 0o444}]}},
    ]
    prepared = prepare_volumes(_pod(volumes), tmp_path, sources, ADDRESSES)
    everything = prepared["all"].host_path
    assert (everything / "a").read_text() == "alpha" and (everything / "bin").read_bytes() == b"\x00\x01"
    assert _mode(everything / "a") == 0o644 and prepared["all"].read_only
    some = prepared["some"].host_path
    assert sorted(p.name for p in some.iterdir() if not p.name.startswith("..")) == ["b.txt", "sub"]
    assert (some / "sub" / "dir" / "a.txt").read_text() == "alpha"
    assert _mode(some / "sub" / "dir" / "a.txt") == 0o600 and _mode(some / "b.txt") == 0o444


def test_refresh_swaps_contents_atomically(tmp_path: Path) -> None:
    volumes = [{"name": "cfg", "configMap": {"name": "cm"}}]
    old = PodSources(config_maps={"cm": _config_map("cm", {"x": "1", "y": "1"})})
    first = prepare_volumes(_pod(volumes), tmp_path, old, ADDRESSES)
    target = first["cfg"].host_path
    prepare_volumes(_pod(volumes), tmp_path, PodSources(config_maps={"cm": _config_map("cm", {"x": "2"})}), ADDRESSES)
    assert (target / "x").read_text() == "2" and not os.path.lexists(target / "y")
    assert len([p for p in target.iterdir() if p.name.startswith("..") and p.is_dir() and not p.is_symlink()]) == 1


def test_secret_volume_decodes_base64_and_honours_default_mode(tmp_path: Path) -> None:
    sources = PodSources(secrets={"s": _secret("s", {"password": b"hunter2"})})
    volumes = [{"name": "creds", "secret": {"secretName": "s", "defaultMode": 0o400}}]
    prepared = prepare_volumes(_pod(volumes), tmp_path, sources, ADDRESSES)
    assert (prepared["creds"].host_path / "password").read_bytes() == b"hunter2"
    assert _mode(prepared["creds"].host_path / "password") == 0o400


def test_missing_objects_fail_unless_optional(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match='configmap "nope" not found'):
        prepare_volumes(_pod([{"name": "v", "configMap": {"name": "nope"}}]), tmp_path, PodSources(), ADDRESSES)
    with pytest.raises(VolumeError, match='secret "s" has no key'):
        prepare_volumes(
            _pod([{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "k"}]}}]),
            tmp_path, PodSources(secrets={"s": _secret("s", {})}), ADDRESSES,
        )
    prepared = prepare_volumes(
        _pod([{"name": "v", "secret": {"secretName": "gone", "optional": True}}]), tmp_path, PodSources(), ADDRESSES
    )
    assert prepared["v"].host_path.is_dir()


@pytest.mark.parametrize(
    "volume",
    [
        {"name": "..", "emptyDir": {}},
        {"name": "../x", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "../x"}]}},
        {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "/etc/x"}]}},
        {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "..data/x"}]}},
    ],
    ids=["name-dotdot", "name-slash", "item-dotdot", "item-absolute", "item-hidden"],
)
def test_names_and_item_paths_cannot_escape(tmp_path: Path, volume: dict[str, Any]) -> None:
    pod_dir = tmp_path / "pod"
    sources = PodSources(config_maps={"cm": _config_map("cm", {"a": "x"})})
    with pytest.raises(VolumeError):
        prepare_volumes(_pod([volume]), pod_dir, sources, ADDRESSES)
    assert not (tmp_path / "x").exists()
    assert not list(tmp_path.rglob("x"))


def test_host_path_types(tmp_path: Path) -> None:
    def prepare(source: dict[str, Any]) -> Path:
        volumes = [{"name": "h", "hostPath": source}]
        return prepare_volumes(_pod(volumes), tmp_path / "pod", PodSources(), ADDRESSES)["h"].host_path

    made = prepare({"path": str(tmp_path / "new-dir"), "type": "DirectoryOrCreate"})
    assert made.is_dir()
    assert prepare({"path": str(tmp_path / "new-file"), "type": "FileOrCreate"}).is_file()
    assert prepare({"path": str(made), "type": "Directory"}) == made
    with pytest.raises(VolumeError, match="does not exist"):
        prepare({"path": str(tmp_path / "absent"), "type": "Directory"})
    with pytest.raises(VolumeError, match="is not a file"):
        prepare({"path": str(made), "type": "File"})
    with pytest.raises(VolumeError, match="is not a socket"):
        prepare({"path": str(made), "type": "Socket"})
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock_path))
        assert prepare({"path": str(sock_path), "type": "Socket"}) == sock_path
    with pytest.raises(VolumeError, match="must be absolute"):
        prepare({"path": "relative/path"})


def test_persistent_volume_claims_filesystem_and_block(tmp_path: Path) -> None:
    directory = tmp_path / "pv-fs"
    directory.mkdir()
    disk = tmp_path / "pv-block.img"
    disk.write_bytes(b"\0" * 1024)
    sources = PodSources(claims={"fs": ClaimVolume(directory), "blk": ClaimVolume(disk, block=True)})
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "fs", "readOnly": True}},
        {"name": "disk", "persistentVolumeClaim": {"claimName": "blk"}},
    ]
    pod = _pod(volumes, volumeMounts=[{"name": "data", "mountPath": "/data"}],
               volumeDevices=[{"name": "disk", "devicePath": "/dev/xvda"}])
    prepared = prepare_volumes(pod, tmp_path / "pod", sources, ADDRESSES)
    assert prepared["data"].host_path == directory and prepared["data"].read_only
    mounts = container_mounts(pod["spec"]["containers"][0], prepared, {})
    assert [(m.source, m.target, m.read_only) for m in mounts] == [
        (str(directory), "/data", True),
        (str(disk), "/dev/xvda", False),
    ]
    with pytest.raises(MountConfigError, match="block volume"):
        container_mounts({"volumeMounts": [{"name": "disk", "mountPath": "/d"}]}, prepared, {})
    with pytest.raises(VolumeError, match="no volume on this node"):
        unbound = [{"name": "x", "persistentVolumeClaim": {"claimName": "unbound"}}]
        prepare_volumes(_pod(unbound), tmp_path / "p2", sources, ADDRESSES)


def test_sub_paths_stay_inside_their_volume(tmp_path: Path) -> None:
    prepared = prepare_volumes(_pod([{"name": "scratch", "emptyDir": {}}]), tmp_path / "pod", PodSources(), ADDRESSES)
    root = prepared["scratch"].host_path
    os.symlink("/etc", root / "link")
    through_link = {"volumeMounts": [{"name": "scratch", "mountPath": "/m", "subPath": "link/x"}]}
    mounts = container_mounts(through_link, prepared, {})
    assert mounts[0].source == str(root / "etc" / "x")
    with pytest.raises(MountConfigError):
        container_mounts({"volumeMounts": [{"name": "scratch", "mountPath": "/m", "subPath": "../../x"}]}, prepared, {})
    with pytest.raises(MountConfigError, match="mountPath"):
        container_mounts({"volumeMounts": [{"name": "scratch", "mountPath": "relative"}]}, prepared, {})


def test_downward_api_and_projected_service_account(tmp_path: Path) -> None:
    volumes = [
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
        ]}},
        {"name": "kube-api-access", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]}},
    ]
    pod = _pod(volumes)
    assert pod_references(pod).config_maps == {"kube-root-ca.crt"} and pod_references(pod).service_account_token
    sources = PodSources(config_maps={"kube-root-ca.crt": _config_map("kube-root-ca.crt", {"ca.crt": "PEM"})},
                         service_account_token="tok")
    prepared = prepare_volumes(pod, tmp_path, sources, ADDRESSES)
    info = prepared["info"].host_path
    assert (info / "labels").read_text() == 'a="1"\nb="2"'
    assert (info / "name").read_text() == "web" and (info / "mem").read_text() == "64"
    access = prepared["kube-api-access"].host_path
    assert [(access / n).read_text() for n in ("token", "ca.crt", "namespace")] == ["tok", "PEM", "ns1"]
    with pytest.raises(VolumeError, match="service account token"):
        prepare_volumes(pod, tmp_path, PodSources(config_maps=sources.config_maps), ADDRESSES)


def test_unsupported_volume_types_are_named(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="csi is not supported"):
        prepare_volumes(_pod([{"name": "v", "csi": {"driver": "x"}}]), tmp_path, PodSources(), ADDRESSES)


def test_environment_composition(tmp_path: Path) -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "s"}}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "level"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pass"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "URL", "value": "http://$(IP):$(KUBERNETES_SERVICE_PORT)/$(UNDEFINED)$$(POD)"},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "absent", "optional": True}}},
        ],
    }
    sources = PodSources(
        config_maps={"cm": _config_map("cm", {"level": "debug", "bad key": "skipped"})},
        secrets={"s": _secret("s", {"pass": b"pw"})},
        service_env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"},
    )
    env = container_env(_pod([], **container), container, sources, {"PATH": "/bin", "POD": "image"}, ADDRESSES)
    assert {k: env.environ[k] for k in ("POD", "NS", "UID", "NODE", "IP", "HOST_IP", "SA", "LEVEL", "PASS", "MEM")} == {
        "POD": "web", "NS": "ns1", "UID": "uid-1", "NODE": "node-1", "IP": "127.7.0.2", "HOST_IP": "127.7.0.1",
        "SA": "sa", "LEVEL": "debug", "PASS": "pw", "MEM": "64",
    }
    assert env.environ["URL"] == "http://127.7.0.2:6443/$(UNDEFINED)$(POD)"
    assert env.environ["CM_level"] == "debug" and "CM_bad key" not in env.environ and "OPT" not in env.environ
    assert env.environ["PATH"] == "/bin" and env.environ["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env.expand_argv(["--ip=$(IP)", "$(PATH)"]) == ["--ip=127.7.0.2", "$(PATH)"]
    missing = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(EnvError, match='configmap "nope" not found'):
        container_env(_pod([], **missing), missing, PodSources(), {}, ADDRESSES)


def test_ip_allocator_is_persistent_distinct_and_reuses_owner(tmp_path: Path) -> None:
    state = tmp_path / "ips.json"
    allocator = LoopbackIPAllocator(state, node_index=3)
    a, b = allocator.allocate("a"), allocator.allocate("b")
    assert a != b and a.startswith("127.3.") and b.startswith("127.3.") and "127.3.0.1" not in (a, b)
    again = LoopbackIPAllocator(state, node_index=3)
    assert again.allocate("a") == a
    again.release("a")
    assert again.allocate("c") not in (a, b)
    assert set(again.allocations()) == {"b", "c"}
