"""Disks, network interfaces, the serial console and the small devices."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from virt_launcher.domain.errors import Problems
from virt_launcher.domain.options import AttachableDisk, DomainOptions

Obj = dict[str, Any]

_DISK_KEYS = {"name", "disk", "cdrom", "lun", "bootOrder", "serial", "cache", "io", "dedicatedIOThread", "shareable"}
_DEVICE_KEYS = {"disks", "interfaces", "inputs", "rng", "autoattachPodInterface", "autoattachSerialConsole",
                "autoattachGraphicsDevice", "autoattachMemBalloon", "logSerialConsole", "blockMultiQueue",
                "networkInterfaceMultiqueue", "useVirtioTransitional"}
_TARGET_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd"}
_INTERFACE_KEYS = {"name", "masquerade", "slirp", "model", "macAddress", "pciAddress", "bootOrder", "ports", "state"}
MEMBALLOON_STATS_PERIOD = 10  # seconds: upstream's default memBalloonStatsPeriod


def _target_name(prefix: str, index: int) -> str:
    letters = string.ascii_lowercase
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = letters[rest] + name
    return prefix + name


def add_devices(root: Element, spec: Obj, disks: Mapping[str, AttachableDisk], options: DomainOptions,
                problems: Problems) -> None:
    devices_spec = spec["domain"].get("devices") or {}
    problems.unknown_keys(devices_spec, _DEVICE_KEYS, "spec.domain.devices")
    devices = SubElement(root, "devices")
    SubElement(devices, "emulator").text = options.emulator
    _disks(devices, spec, devices_spec, disks, problems)
    _interfaces(devices, spec, devices_spec, problems)
    if devices_spec.get("autoattachSerialConsole", True) is not False:
        _serial(devices, options)
    if devices_spec.get("rng") is not None:
        rng = SubElement(devices, "rng", model="virtio")
        SubElement(rng, "backend", model="random").text = "/dev/urandom"
    for index, item in enumerate(devices_spec.get("inputs") or []):
        if item.get("type") != "tablet":
            problems.add(f"spec.domain.devices.inputs[{index}].type", "only tablet is supported")
            continue
        SubElement(devices, "input", type="tablet", bus=item.get("bus") or "usb")
    if devices_spec.get("autoattachMemBalloon", True) is not False:
        balloon = SubElement(devices, "memballoon", model="virtio")
        # Without a period QEMU never polls the guest's own view of its memory (available,
        # unused, ...), and libvirt reports only the balloon size.
        SubElement(balloon, "stats", period=str(MEMBALLOON_STATS_PERIOD))
    else:
        SubElement(devices, "memballoon", model="none")


def _disks(devices: Element, spec: Obj, devices_spec: Obj, prepared: Mapping[str, AttachableDisk],
           problems: Problems) -> None:
    listed = list(devices_spec.get("disks") or [])
    named = {d.get("name") for d in listed}
    # A volume without a disk is attached as a virtio disk, as upstream's defaulting does.
    for volume in spec.get("volumes") or []:
        if volume.get("name") not in named:
            listed.append({"name": volume.get("name"), "disk": {"bus": "virtio"}})
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    counters: dict[str, int] = {}
    scsi = False
    for index, disk in enumerate(listed):
        where = f"spec.domain.devices.disks[{index}]"
        problems.unknown_keys(disk, _DISK_KEYS, where)
        name = disk.get("name")
        if name not in volumes:
            problems.add(f"{where}.name", f"no volume named {name!r} in spec.volumes")
            continue
        source = prepared.get(name)
        if source is None:
            problems.add(f"{where}.name", f"volume {name!r} was not prepared")
            continue
        kind = "cdrom" if "cdrom" in disk else "lun" if "lun" in disk else "disk"
        target = disk.get(kind) or {}
        bus = target.get("bus") or ("sata" if kind == "cdrom" else "scsi" if kind == "lun" else "virtio")
        if bus not in _TARGET_PREFIX:
            problems.add(f"{where}.{kind}.bus", f"unsupported bus {bus!r}")
            continue
        if kind == "lun" and bus != "scsi":
            problems.add(f"{where}.lun.bus", "a LUN needs the scsi bus")
            continue
        scsi = scsi or bus == "scsi"
        prefix = _TARGET_PREFIX[bus]
        number = counters.get(prefix, 0)
        counters[prefix] = number + 1
        _disk(devices, disk, kind, bus, _target_name(prefix, number), source, target, where, problems)
    if scsi:
        SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")


def _disk(devices: Element, disk: Obj, kind: str, bus: str, dev: str, source: AttachableDisk, target: Obj,
          where: str, problems: Problems) -> None:
    element = SubElement(devices, "disk", type=source.type, device=kind)
    driver = SubElement(element, "driver", name="qemu", type=source.format)
    cache = disk.get("cache")
    if cache:
        if cache not in ("none", "writethrough", "writeback"):
            problems.add(f"{where}.cache", f"unsupported cache mode {cache!r}")
        driver.set("cache", cache)
    if disk.get("io") and disk["io"] != "default":
        driver.set("io", disk["io"])
    if source.type == "block":
        SubElement(element, "source", dev=str(source.path))
    else:
        SubElement(element, "source", file=str(source.path))
    SubElement(element, "target", dev=dev, bus=bus)
    if source.read_only or target.get("readonly") or kind == "cdrom":
        SubElement(element, "readonly")
    if disk.get("shareable"):
        SubElement(element, "shareable")
    if disk.get("serial"):
        SubElement(element, "serial").text = disk["serial"]
    if disk.get("bootOrder") is not None:
        SubElement(element, "boot", order=str(int(disk["bootOrder"])))
    SubElement(element, "alias", name=f"ua-{disk['name']}")


def _interfaces(devices: Element, spec: Obj, devices_spec: Obj, problems: Problems) -> None:
    interfaces = list(devices_spec.get("interfaces") or [])
    networks = {n.get("name"): n for n in spec.get("networks") or []}
    if not interfaces and not networks and devices_spec.get("autoattachPodInterface", True) is not False:
        interfaces = [{"name": "default", "masquerade": {}}]
        networks = {"default": {"name": "default", "pod": {}}}
    for index, interface in enumerate(interfaces):
        where = f"spec.domain.devices.interfaces[{index}]"
        for binding in ("bridge", "sriov", "passt", "binding"):
            if binding in interface:
                problems.add(f"{where}.{binding}", "only masquerade (user-mode) networking is supported by "
                                                   "kubevirt-py")
        problems.unknown_keys(interface, _INTERFACE_KEYS | {"bridge", "sriov", "passt", "binding"}, where)
        network = networks.get(interface.get("name"))
        if network is None:
            problems.add(f"{where}.name", f"no network named {interface.get('name')!r} in spec.networks")
            continue
        if "multus" in network:
            problems.add(f"spec.networks[{list(networks).index(interface['name'])}].multus",
                         "Multus networks are not supported by kubevirt-py")
            continue
        element = SubElement(devices, "interface", type="user")
        if interface.get("macAddress"):
            SubElement(element, "mac", address=interface["macAddress"])
        SubElement(element, "model", type=interface.get("model") or "virtio")
        if interface.get("bootOrder") is not None:
            SubElement(element, "boot", order=str(int(interface["bootOrder"])))
        SubElement(element, "alias", name=f"ua-{interface['name']}")


def _serial(devices: Element, options: DomainOptions) -> None:
    serial = SubElement(devices, "serial", type="unix")
    SubElement(serial, "source", mode="bind", path=str(options.serial_socket))
    if options.serial_log is not None:
        SubElement(serial, "log", file=str(options.serial_log), append="on")
    SubElement(serial, "target", port="0")
    console = SubElement(devices, "console", type="unix")
    SubElement(console, "source", mode="bind", path=str(options.serial_socket))
    SubElement(console, "target", type="serial", port="0")
