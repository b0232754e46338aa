"""spec.domain of a VMI: cpu, memory, resources, machine, firmware, features, clock, devices."""

from __future__ import annotations

from kubevirt_api.schema.builders import (
    Schema, array, boolean, feature_state, free_form, integer, marker, obj, quantity, quantity_map, string,
)

DISK_BUSES = ["virtio", "sata", "scsi", "usb"]
IMAGE_PULL_POLICIES = ["Always", "Never", "IfNotPresent"]


def cpu() -> Schema:
    return obj("CPU topology and model of the guest.", {
        "cores": integer("Cores per socket.", minimum=0),
        "sockets": integer("Sockets.", minimum=0),
        "threads": integer("Threads per core.", minimum=0),
        "maxSockets": integer("Sockets the guest may grow to by hotplug.", minimum=0),
        "model": string("CPU model: host-model, host-passthrough or a named model."),
        "features": array(obj("", {
            "name": string("CPU flag name."),
            "policy": string("force, require, optional, disable or forbid.",
                             enum=["force", "require", "optional", "disable", "forbid"]),
        }, required=["name"])),
        "dedicatedCpuPlacement": boolean(),
        "isolateEmulatorThread": boolean(),
    }, open_ended=True)


def memory() -> Schema:
    return obj("Memory the guest sees.", {
        "guest": quantity("Memory visible to the guest."),
        "maxGuest": quantity("Upper bound for memory hotplug."),
        "hugepages": obj("", {"pageSize": string()}),
    })


def resources() -> Schema:
    return obj("Resources of the launcher pod running the guest.", {
        "requests": quantity_map(),
        "limits": quantity_map(),
        "overcommitGuestOverhead": boolean(),
    })


def _kernel_boot() -> Schema:
    return obj("Boot a kernel (and initrd) taken from a container image.", {
        "kernelArgs": string("Kernel command line."),
        "container": obj("", {
            "image": string("Image holding the kernel and initrd."),
            "imagePullSecret": string(),
            "imagePullPolicy": string(enum=IMAGE_PULL_POLICIES),
            "kernelPath": string("Absolute path of the kernel inside the image."),
            "initrdPath": string("Absolute path of the initrd inside the image."),
        }, required=["image"]),
    })


def firmware() -> Schema:
    return obj("Firmware of the guest.", {
        "uuid": string("SMBIOS UUID of the guest."),
        "serial": string("SMBIOS serial number."),
        "bootloader": obj("", {
            "bios": obj("", {"useSerial": boolean()}),
            "efi": obj("", {"secureBoot": boolean(), "persistent": boolean()}),
        }),
        "kernelBoot": _kernel_boot(),
    }, open_ended=True)


def features() -> Schema:
    return obj("Hypervisor features.", {
        "acpi": feature_state(),
        "apic": obj("", {"enabled": boolean(), "endOfInterrupt": boolean()}),
        "smm": feature_state(),
        "pvspinlock": feature_state(),
        "kvm": obj("", {"hidden": boolean()}),
        "hyperv": free_form("Hyper-V enlightenments."),
    }, open_ended=True)


def clock() -> Schema:
    return obj("Guest clock.", {
        "utc": obj("", {"offsetSeconds": integer(fmt="int32")}),
        "timezone": string(),
        "timer": free_form("Timers (hpet, pit, rtc, kvm, hyperv)."),
    })


def _disk_target(description: str) -> Schema:
    return obj(description, {
        "bus": string("Bus the device is attached to.", enum=DISK_BUSES),
        "readonly": boolean(),
        "pciAddress": string(),
    })


def disk() -> Schema:
    return obj("A disk device; its name refers to a volume.", {
        "name": string("Name of the volume this disk uses."),
        "disk": _disk_target("Attach as a disk."),
        "cdrom": obj("Attach as a CD-ROM.", {
            "bus": string(enum=DISK_BUSES), "readonly": boolean(), "tray": string(enum=["open", "closed"]),
        }),
        "lun": obj("Attach as a LUN.", {"bus": string(enum=DISK_BUSES), "readonly": boolean()}),
        "bootOrder": integer("Boot order; lower boots first.", minimum=1, fmt="int32"),
        "serial": string(),
        "cache": string(enum=["none", "writethrough", "writeback"]),
        "io": string(enum=["native", "threads", "default"]),
        "dedicatedIOThread": boolean(),
        "shareable": boolean(),
    }, required=["name"], open_ended=True)


def interface() -> Schema:
    return obj("A network interface; its name refers to a network.", {
        "name": string(),
        "masquerade": marker("NAT behind the pod address."),
        "bridge": marker(),
        "slirp": marker(),
        "sriov": marker(),
        "passt": marker(),
        "binding": obj("", {"name": string()}, required=["name"]),
        "model": string("Device model, e.g. virtio or e1000."),
        "macAddress": string(),
        "pciAddress": string(),
        "bootOrder": integer(minimum=1, fmt="int32"),
        "ports": array(obj("", {
            "name": string(),
            "protocol": string(enum=["TCP", "UDP"]),
            "port": integer(minimum=1, maximum=65535, fmt="int32"),
        }, required=["port"])),
        "state": string(),
    }, required=["name"], open_ended=True)


def devices() -> Schema:
    return obj("Devices of the guest.", {
        "disks": array(disk()),
        "interfaces": array(interface()),
        "inputs": array(obj("", {
            "name": string(), "type": string(enum=["tablet"]), "bus": string(enum=["usb", "virtio"]),
        }, required=["name", "type"])),
        "rng": marker("A virtio random number generator."),
        "autoattachPodInterface": boolean(),
        "autoattachSerialConsole": boolean(),
        "autoattachGraphicsDevice": boolean(),
        "autoattachMemBalloon": boolean(),
        "logSerialConsole": boolean(),
        "blockMultiQueue": boolean(),
        "networkInterfaceMultiqueue": boolean(),
        "useVirtioTransitional": boolean(),
    }, open_ended=True)


def domain() -> Schema:
    return obj("The virtual hardware of the guest.", {
        "cpu": cpu(),
        "memory": memory(),
        "resources": resources(),
        "machine": obj("", {"type": string("QEMU machine type, e.g. q35.")}),
        "firmware": firmware(),
        "features": features(),
        "clock": clock(),
        "devices": devices(),
        "ioThreadsPolicy": string(enum=["shared", "auto", "supplementalPool"]),
        "chassis": free_form(),
    }, required=["devices"], open_ended=True)
