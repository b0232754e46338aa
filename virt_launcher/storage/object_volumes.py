"""configMap and secret volumes: the object's keys as files on an ISO.

An optional object that does not exist gives an empty ISO, so the guest still finds
the device (and its label) and can tell "nothing there" from "not attached".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.iso import MAX_LABEL, valid_label, write_iso
from virt_launcher.storage.kube_objects import config_map_items, secret_items
from virt_launcher.storage.volume_ref import VolumeRef
from virt_launcher.storage.workdir import artifact_path

CONFIG_MAP_LABEL = "cfgdata"
SECRET_LABEL = "secret"

Decoder = Callable[[Mapping[str, Any], str, str], dict[str, bytes]]


def prepare_config_map(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    return _object_iso(volume, workdir, "name", "ConfigMap", context.config_maps, config_map_items, CONFIG_MAP_LABEL)


def prepare_secret(
    volume: VolumeRef, vmi: Mapping[str, Any], workdir: Path, context: StorageContext, reuse: bool
) -> PreparedDisk:
    return _object_iso(volume, workdir, "secretName", "Secret", context.secrets, secret_items, SECRET_LABEL)


def _object_iso(
    volume: VolumeRef,
    workdir: Path,
    name_key: str,
    kind: str,
    objects: Mapping[str, Mapping[str, Any]],
    decode: Decoder,
    default_label: str,
) -> PreparedDisk:
    name_field = volume.field(name_key)
    name = volume.source.get(name_key)
    if not isinstance(name, str) or not name:
        raise StorageError(name_field, f"a {kind} name is required")
    label = volume_label(volume, default_label)
    found = objects.get(name)
    if found is None:
        if not volume.source.get("optional"):
            raise StorageError(name_field, f"{kind} {name!r} does not exist (set optional: true to allow that)")
        files: dict[str, bytes] = {}
    else:
        files = decode(found, name_field, name)
    path = artifact_path(workdir, volume.name, ".iso", volume.field())
    write_iso(path, label, files)
    return PreparedDisk(name=volume.name, path=path, format="raw", type="file", read_only=True, device_hint="cdrom")


def volume_label(volume: VolumeRef, default: str) -> str:
    label = volume.source.get("volumeLabel")
    if label is None or label == "":
        return default
    if not isinstance(label, str) or not valid_label(label):
        raise StorageError(
            volume.field("volumeLabel"),
            f"{label!r} must be 1 to {MAX_LABEL} characters of letters, digits, '_', '.' or '-'",
        )
    return label
