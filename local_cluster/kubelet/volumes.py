"""Pod volumes made real on the node, under <pod dir>/volumes/<plugin>/<name>.

Each volume becomes a host path that sandboxes later bind-mount into containers.
ConfigMap, Secret, downwardAPI and projected volumes are written atomically (see
projection) and are read-only in containers, as in Kubernetes; calling
prepare_volumes again refreshes them from newer objects.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_cluster.kubelet.downward import DownwardError, PodAddresses, pod_field, resource_field
from local_cluster.kubelet.host_paths import NodeHostPaths
from local_cluster.kubelet.object_data import ObjectDataError, config_map_data, secret_data
from oci_layout.rooted_paths import UnsafePath, dns_label
from local_cluster.kubelet.pod_sources import PodSources
from local_cluster.kubelet.projection import ProjectedFile, write_projection

DEFAULT_FILE_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up (yet): the container stays in ContainerCreating."""


@dataclass(frozen=True)
class PreparedVolume:
    name: str
    host_path: Path
    # True: a file standing in for a block device, exposed through volumeDevices.
    block: bool = False
    # Forced read-only whatever the volumeMount says.
    read_only: bool = False


@dataclass(frozen=True)
class _Context:
    pod: dict[str, Any]
    volumes_dir: Path
    sources: PodSources
    addresses: PodAddresses
    host_paths: NodeHostPaths


def prepare_volumes(
    pod: dict[str, Any], pod_dir: Path, sources: PodSources, addresses: PodAddresses,
    host_paths: NodeHostPaths = NodeHostPaths(),
) -> dict[str, PreparedVolume]:
    context = _Context(pod, pod_dir / "volumes", sources, addresses, host_paths)
    prepared: dict[str, PreparedVolume] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        try:
            name = dns_label(volume.get("name"), "volume name")
        except UnsafePath as exc:
            raise VolumeError(str(exc)) from None
        if name in prepared:
            raise VolumeError(f"volume {name!r} is declared twice")
        try:
            prepared[name] = _prepare_one(context, name, volume)
        except (UnsafePath, DownwardError, ObjectDataError, OSError) as exc:
            raise VolumeError(f"volume {name!r}: {exc}") from None
    return prepared


def _prepare_one(context: _Context, name: str, volume: dict[str, Any]) -> PreparedVolume:
    for key, handler in _HANDLERS.items():
        if key in volume:
            return handler(context, name, volume[key] or {})
    kinds = sorted(set(volume) - {"name"})
    raise VolumeError(f"volume {name!r}: type {', '.join(kinds) or '<none>'} is not supported by the process kubelet")


def _plugin_dir(context: _Context, plugin: str, name: str) -> Path:
    return context.volumes_dir / plugin / name


def _empty_dir(context: _Context, name: str, source: dict[str, Any]) -> PreparedVolume:
    # medium: Memory is a plain directory too: a tmpfs would have to be mounted in the
    # node's namespace to be shared by the pod's containers, and outlive them.
    path = _plugin_dir(context, "empty-dir", name)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return PreparedVolume(name, path)


_HOST_PATH_CHECKS: dict[str, tuple[Callable[[int], bool], str]] = {
    "Directory": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a file"),
    "Socket": (stat.S_ISSOCK, "a socket"),
    "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}


def _host_path(context: _Context, name: str, source: dict[str, Any]) -> PreparedVolume:
    raw = source.get("path")
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise VolumeError(f"volume {name!r}: hostPath path {raw!r} must be absolute")
    path = context.host_paths.resolve(raw)
    kind = source.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        kind = "Directory"
    elif kind == "FileOrCreate":
        if not path.exists():
            # Like kubelet, the parent must already exist; only the file is created.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
        kind = "File"
    elif kind == "":
        # No checks, as the API says; a missing path becomes a directory, as the
        # container runtimes do, since a bind mount needs a source.
        if not os.path.lexists(path):
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        return PreparedVolume(name, path)
    if kind not in _HOST_PATH_CHECKS:
        raise VolumeError(f"volume {name!r}: unknown hostPath type {kind!r}")
    check, what = _HOST_PATH_CHECKS[kind]
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VolumeError(f"volume {name!r}: hostPath {path} does not exist (type {kind})") from None
    if not check(mode):
        raise VolumeError(f"volume {name!r}: hostPath {path} is not {what} (type {kind})")
    return PreparedVolume(name, path)


def _select(
    what: str,
    data: dict[str, bytes] | None,
    items: list[dict[str, Any]] | None,
    default_mode: int,
    optional: bool,
) -> dict[str, ProjectedFile]:
    if data is None:
        if optional:
            return {}
        raise VolumeError(f"{what} not found")
    if not items:
        return {key: ProjectedFile(value, default_mode) for key, value in data.items()}
    files: dict[str, ProjectedFile] = {}
    for item in items:
        key = item.get("key")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"{what} has no key {key!r}")
        files[item.get("path") or ""] = ProjectedFile(data[key], _mode(item.get("mode"), default_mode))
    return files


def _mode(value: object, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def _config_map_files(context: _Context, source: dict[str, Any], default_mode: int) -> dict[str, ProjectedFile]:
    name = source.get("name", "")
    obj = context.sources.config_maps.get(name)
    data = config_map_data(obj) if obj is not None else None
    return _select(f'configmap "{name}"', data, source.get("items"), default_mode, bool(source.get("optional")))


def _secret_files(
    context: _Context, name: str, source: dict[str, Any], default_mode: int
) -> dict[str, ProjectedFile]:
    obj = context.sources.secrets.get(name)
    data = secret_data(obj) if obj is not None else None
    return _select(f'secret "{name}"', data, source.get("items"), default_mode, bool(source.get("optional")))


def _downward_files(context: _Context, source: dict[str, Any], default_mode: int) -> dict[str, ProjectedFile]:
    files: dict[str, ProjectedFile] = {}
    for item in source.get("items") or []:
        if "fieldRef" in item:
            value = pod_field(context.pod, (item["fieldRef"] or {}).get("fieldPath", ""), context.addresses)
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"] or {}
            value = resource_field(
                context.pod, ref.get("containerName", ""), ref.get("resource", ""), ref.get("divisor")
            )
        else:
            raise VolumeError(f"downwardAPI item {item.get('path')!r} has neither fieldRef nor resourceFieldRef")
        files[item.get("path") or ""] = ProjectedFile(value.encode(), _mode(item.get("mode"), default_mode))
    return files


def _token_file(context: _Context, source: dict[str, Any], default_mode: int) -> dict[str, ProjectedFile]:
    if context.sources.service_account_token is None:
        raise VolumeError("no service account token was supplied for a serviceAccountToken projection")
    return {source.get("path") or "": ProjectedFile(context.sources.service_account_token.encode(), default_mode)}


def _projected_volume(
    context: _Context, name: str, plugin: str, files: dict[str, ProjectedFile]
) -> PreparedVolume:
    path = _plugin_dir(context, plugin, name)
    write_projection(path, files)
    return PreparedVolume(name, path, read_only=True)


def _config_map(context: _Context, name: str, source: dict[str, Any]) -> PreparedVolume:
    files = _config_map_files(context, source, _mode(source.get("defaultMode"), DEFAULT_FILE_MODE))
    return _projected_volume(context, name, "configmap", files)


def _secret(context: _Context, name: str, source: dict[str, Any]) -> PreparedVolume:
    files = _secret_files(
        context, source.get("secretName", ""), source, _mode(source.get("defaultMode"), DEFAULT_FILE_MODE)
    )
    return _projected_volume(context, name, "secret", files)


def _downward_api(context: _Context, name: str, source: dict[str, Any]) -> PreparedVolume:
    files = _downward_files(context, source, _mode(source.get("defaultMode"), DEFAULT_FILE_MODE))
    return _projected_volume(context, name, "downward-api", files)


def _projected(context: _Context, name: str, source: dict[str, Any]) -> PreparedVolume:
    default_mode = _mode(source.get("defaultMode"), DEFAULT_FILE_MODE)
    files: dict[str, ProjectedFile] = {}
    for item in source.get("sources") or []:
        if "configMap" in item:
            files.update(_config_map_files(context, item["configMap"] or {}, default_mode))
        elif "secret" in item:
            secret = item["secret"] or {}
            files.update(_secret_files(context, secret.get("name", ""), secret, default_mode))
        elif "downwardAPI" in item:
            files.update(_downward_files(context, item["downwardAPI"] or {}, default_mode))
        elif "serviceAccountToken" in item:
            files.update(_token_file(context, item["serviceAccountToken"] or {}, default_mode))
        else:
            raise VolumeError(f"projected source {sorted(item)} is not supported by the process kubelet")
    return _projected_volume(context, name, "projected", files)


def _persistent_volume_claim(context: _Context, name: str, source: dict[str, Any]) -> PreparedVolume:
    claim_name = source.get("claimName", "")
    claim = context.sources.claims.get(claim_name)
    if claim is None:
        raise VolumeError(f'persistentVolumeClaim "{claim_name}" has no volume on this node yet')
    try:
        mode = os.stat(claim.path).st_mode
    except FileNotFoundError:
        raise VolumeError(f'persistentVolumeClaim "{claim_name}": {claim.path} does not exist') from None
    if claim.block and not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise VolumeError(f'persistentVolumeClaim "{claim_name}": block volume {claim.path} is not a file or device')
    if not claim.block and not stat.S_ISDIR(mode):
        raise VolumeError(f'persistentVolumeClaim "{claim_name}": filesystem volume {claim.path} is not a directory')
    return PreparedVolume(name, claim.path, block=claim.block, read_only=bool(source.get("readOnly")))


_HANDLERS: dict[str, Callable[[_Context, str, dict[str, Any]], PreparedVolume]] = {
    "emptyDir": _empty_dir,
    "hostPath": _host_path,
    "configMap": _config_map,
    "secret": _secret,
    "downwardAPI": _downward_api,
    "projected": _projected,
    "persistentVolumeClaim": _persistent_volume_claim,
}
