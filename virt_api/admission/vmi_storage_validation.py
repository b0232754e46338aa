"""Disks and volumes of a VMI spec: every disk has a volume, every volume one source."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kube_schema.errors import FieldError
from virt_api.admission.causes import (MAX_LIST_LENGTH, dns_label_problem, invalid, not_supported, required,
                                       serial_errors, too_long, too_many)
from virt_api.admission.naming import unique_names
from virt_api.admission.shape import as_list, as_obj, as_str, dig, indexed_objs

Obj = dict[str, Any]

DISK_KINDS = ("disk", "cdrom", "lun")
DISK_BUSES = ("virtio", "scsi", "sata", "usb")
CACHE_MODES = ("none", "writethrough", "writeback")
IO_MODES = ("native", "threads")
VOLUME_SOURCES = ("persistentVolumeClaim", "sysprep", "cloudInitNoCloud", "cloudInitConfigDrive", "containerDisk",
                  "ephemeral", "emptyDisk", "hostDisk", "dataVolume", "configMap", "secret", "downwardAPI",
                  "serviceAccount", "downwardMetrics", "memoryDump")
# Volume sources a VMI may use once at most: each is one device with a fixed identity.
SINGLETON_SOURCES = ("serviceAccount", "downwardMetrics", "memoryDump")
HOST_DISK_TYPES = ("Disk", "DiskOrCreate")
# Inline cloud-init data travels with the object to every node that watches it; larger
# data belongs in a Secret (userDataSecretRef / networkDataSecretRef), as upstream says.
MAX_CLOUD_INIT_DATA = 2048
CLOUD_INIT_SOURCES = ("cloudInitNoCloud", "cloudInitConfigDrive")


def _volumes_by_name(spec: Obj) -> dict[str, Obj]:
    found: dict[str, Obj] = {}
    for _, volume in indexed_objs(spec.get("volumes")):
        name = as_str(volume.get("name"))
        if name and name not in found:
            found[name] = volume
    return found


# --- disks ----------------------------------------------------------------------------

def _disk_target(at: str, disk: Obj, volume: Obj | None) -> list[FieldError]:
    kinds = [kind for kind in DISK_KINDS if disk.get(kind) is not None]
    errors = []
    if len(kinds) > 1:
        errors.append(invalid(at, kinds, "a disk is exactly one of disk, cdrom or lun"))
    for kind in kinds:
        bus = as_obj(disk.get(kind)).get("bus")
        if bus not in (None, "") and bus not in DISK_BUSES:
            errors.append(not_supported(f"{at}.{kind}.bus", bus, DISK_BUSES))
        elif kind == "cdrom" and bus == "virtio":
            errors.append(invalid(f"{at}.cdrom.bus", bus, "a CD-ROM cannot use the virtio bus on q35 machines"))
    if "lun" in kinds and volume is not None and \
            volume.get("persistentVolumeClaim") is None and volume.get("dataVolume") is None:
        errors.append(invalid(f"{at}.lun", disk.get("lun"),
                              "a LUN can only be backed by a persistentVolumeClaim or dataVolume volume"))
    return errors


def _disk_options(at: str, disk: Obj) -> list[FieldError]:
    errors = []
    cache, io = disk.get("cache"), disk.get("io")
    if cache not in (None, "") and cache not in CACHE_MODES:
        errors.append(not_supported(f"{at}.cache", cache, CACHE_MODES))
    if io not in (None, "") and io not in IO_MODES:
        errors.append(not_supported(f"{at}.io", io, IO_MODES))
    return errors + serial_errors(f"{at}.serial", disk.get("serial"))


def check_disks(spec: Obj, base: str) -> list[FieldError]:
    where = f"{base}.domain.devices.disks"
    disks = dig(spec, "domain", "devices", "disks")
    if len(as_list(disks)) > MAX_LIST_LENGTH:
        return [too_many(where, len(disks))]
    volumes = _volumes_by_name(spec)
    _, errors = unique_names(disks, where, "disk")
    for index, disk in indexed_objs(disks):
        at = f"{where}[{index}]"
        name = as_str(disk.get("name"))
        if name:
            problem = dns_label_problem(name)
            if problem:
                # The name becomes part of container and file names in the launcher pod.
                errors.append(invalid(f"{at}.name", name, problem))
            if name not in volumes:
                errors.append(invalid(f"{at}.name", name, f"no volume of this name in {base}.volumes"))
        errors += _disk_target(at, disk, volumes.get(name or ""))
        errors += _disk_options(at, disk)
    return errors


# --- volumes --------------------------------------------------------------------------

def _cloud_init(at: str, source: Any) -> list[FieldError]:
    data = as_obj(source)
    errors = []
    user = [k for k in ("userData", "userDataBase64") if data.get(k)] + \
        (["userDataSecretRef"] if as_obj(data.get("userDataSecretRef")).get("name") else [])
    network = [k for k in ("networkData", "networkDataBase64") if data.get(k)] + \
        (["networkDataSecretRef"] if as_obj(data.get("networkDataSecretRef")).get("name") else [])
    for kinds, what in ((user, "user data"), (network, "network data")):
        if len(kinds) > 1:
            errors.append(invalid(at, kinds, f"give {what} only once: " + ", ".join(kinds)))
    if not user and not network:
        errors.append(required(at, "needs user data or network data (inline, base64 or a secret reference)"))
    for key in ("userData", "networkData", "userDataBase64", "networkDataBase64"):
        text = data.get(key)
        if not isinstance(text, str) or not text:
            continue
        if key.endswith("Base64"):
            try:
                text = base64.b64decode(text, validate=True).decode("latin-1")
            except (binascii.Error, ValueError):
                errors.append(invalid(f"{at}.{key}", "<base64>", "is not valid base64"))
                continue
        if len(text) > MAX_CLOUD_INIT_DATA:
            errors.append(too_long(f"{at}.{key}", MAX_CLOUD_INIT_DATA,
                                   f"is {len(text)} bytes, more than {MAX_CLOUD_INIT_DATA}; "
                                   f"keep larger data in a Secret and reference it"))
    return errors


def _required_names(at: str, volume: Obj) -> list[FieldError]:
    """Sources that reference another object must name it."""
    errors = []
    for source, key in (("dataVolume", "name"), ("configMap", "name"), ("secret", "secretName"),
                        ("serviceAccount", "serviceAccountName"), ("persistentVolumeClaim", "claimName")):
        if volume.get(source) is not None and not as_str(as_obj(volume.get(source)).get(key)):
            errors.append(required(f"{at}.{source}.{key}"))
    return errors


def _host_disk(at: str, host_disk: Any) -> list[FieldError]:
    disk = as_obj(host_disk)
    errors = []
    if not as_str(disk.get("path")):
        errors.append(required(f"{at}.hostDisk.path"))
    kind = disk.get("type")
    if kind not in HOST_DISK_TYPES:
        errors.append(not_supported(f"{at}.hostDisk.type", kind, HOST_DISK_TYPES))
    elif kind == "Disk" and disk.get("capacity") not in (None, "", 0, "0"):
        errors.append(invalid(f"{at}.hostDisk.capacity", disk.get("capacity"),
                              "capacity only applies when type is DiskOrCreate"))
    return errors


def check_volumes(spec: Obj, base: str) -> list[FieldError]:
    where = f"{base}.volumes"
    volumes = spec.get("volumes")
    if len(as_list(volumes)) > MAX_LIST_LENGTH:
        return [too_many(where, len(volumes))]
    _, errors = unique_names(volumes, where, "volume")
    singletons = {source: 0 for source in SINGLETON_SOURCES}
    for index, volume in indexed_objs(volumes):
        at = f"{where}[{index}]"
        sources = [source for source in VOLUME_SOURCES if volume.get(source) is not None]
        if len(sources) != 1:
            errors.append(invalid(at, sources, "a volume needs exactly one source, such as containerDisk, "
                                               "persistentVolumeClaim or cloudInitNoCloud"))
        for source in sources:
            singletons[source] = singletons.get(source, 0) + 1
        errors += _required_names(at, volume)
        if volume.get("hostDisk") is not None:
            errors += _host_disk(at, volume["hostDisk"])
        for source in CLOUD_INIT_SOURCES:
            if volume.get(source) is not None:
                errors += _cloud_init(f"{at}.{source}", volume[source])
    for source in SINGLETON_SOURCES:
        if singletons[source] > 1:
            errors.append(invalid(where, singletons[source], f"at most one {source} volume is allowed"))
    return errors


def check_volumes_attached(spec: Obj, base: str) -> list[FieldError]:
    """A VMI (not a template: the VMI mutator attaches the rest) uses every volume it lists."""
    devices = dig(spec, "domain", "devices")
    attached = {as_str(item.get("name")) for key in ("disks", "filesystems")
                for _, item in indexed_objs(as_obj(devices).get(key))}
    errors = []
    for index, volume in indexed_objs(spec.get("volumes")):
        name = as_str(volume.get("name"))
        if name and name not in attached and volume.get("memoryDump") is None:
            errors.append(invalid(f"{base}.volumes[{index}].name", name,
                                  "no disk or filesystem of this name in domain.devices"))
    return errors
