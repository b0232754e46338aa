"""Everything about a VMI spec that is not storage, networking or resources: machine,
firmware, start and eviction strategies, names, probes and input devices."""

from __future__ import annotations

import posixpath
from typing import Any

from kube_schema.errors import FieldError
from kubevirt_api.phases import EvictionStrategy, values
from virt_api.admission.causes import (dns_label_problem, dns_subdomain_problem, invalid, not_supported, required,
                                       serial_errors)
from virt_api.admission.shape import as_obj, as_str, dig, indexed_objs

Obj = dict[str, Any]

ARCHITECTURES = ("amd64",)  # what our launchers emulate (x86_64)
MACHINE_TYPE_PREFIXES = ("q35", "pc-q35")
START_STRATEGIES = ("Paused",)
PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "guestAgentPing")
# Probes the handler runs from outside the guest need the guest reachable on the pod network.
NETWORK_PROBE_HANDLERS = ("httpGet", "tcpSocket")
INPUT_BUSES = ("usb", "virtio")
INPUT_TYPES = ("tablet",)


def _machine(spec: Obj, base: str) -> list[FieldError]:
    errors = []
    architecture = spec.get("architecture")
    if architecture not in (None, "") and architecture not in ARCHITECTURES:
        errors.append(not_supported(f"{base}.architecture", architecture, ARCHITECTURES))
    machine = dig(spec, "domain", "machine", "type")
    if machine not in (None, "") and not (isinstance(machine, str) and machine.startswith(MACHINE_TYPE_PREFIXES)):
        errors.append(invalid(f"{base}.domain.machine.type", machine, "only q35 machine types are supported "
                                                                       "(q35, pc-q35-*)"))
    return errors


def _strategies(spec: Obj, base: str) -> list[FieldError]:
    errors = []
    start = spec.get("startStrategy")
    if start is not None and start not in START_STRATEGIES:
        errors.append(not_supported(f"{base}.startStrategy", start, START_STRATEGIES))
    elif start is not None and spec.get("livenessProbe") is not None:
        errors.append(invalid(f"{base}.startStrategy", start,
                              "a VMI that starts paused cannot have a livenessProbe: it would fail at once"))
    eviction = spec.get("evictionStrategy")
    if eviction is not None and eviction not in values(EvictionStrategy):
        errors.append(not_supported(f"{base}.evictionStrategy", eviction, values(EvictionStrategy)))
    return errors


def _names(spec: Obj, base: str) -> list[FieldError]:
    errors = []
    for key, check in (("hostname", dns_label_problem), ("subdomain", dns_subdomain_problem)):
        value = spec.get(key)
        if value in (None, ""):
            continue
        problem = check(value) if isinstance(value, str) else "must be a string"
        if problem:
            errors.append(invalid(f"{base}.{key}", value, problem))
    return errors


def _absolute_path(field: str, path: Any) -> list[FieldError]:
    if not isinstance(path, str) or path == "/" or not path.startswith("/") or \
            posixpath.normpath(path) != path.rstrip("/"):
        return [invalid(field, path, "must be an absolute path to a file, without '..' or '.' components")]
    return []


def _kernel_boot(kernel_boot: Any, at: str) -> list[FieldError]:
    boot = as_obj(kernel_boot)
    container = boot.get("container")
    if container is None:
        if boot.get("kernelArgs"):
            return [invalid(f"{at}.kernelArgs", boot.get("kernelArgs"), "kernel arguments need a kernel: "
                                                                          "set kernelBoot.container")]
        return []
    container = as_obj(container)
    errors = []
    if not as_str(container.get("image")):
        errors.append(required(f"{at}.container.image"))
    paths = [key for key in ("kernelPath", "initrdPath") if container.get(key) not in (None, "")]
    if not paths:
        errors.append(required(f"{at}.container", "set kernelPath, initrdPath or both"))
    for key in paths:
        errors += _absolute_path(f"{at}.container.{key}", container[key])
    return errors


def _firmware(spec: Obj, base: str) -> list[FieldError]:
    at = f"{base}.domain.firmware"
    firmware = as_obj(dig(spec, "domain", "firmware"))
    errors = serial_errors(f"{at}.serial", firmware.get("serial"))
    bootloader = as_obj(firmware.get("bootloader"))
    if bootloader.get("efi") is not None and bootloader.get("bios") is not None:
        errors.append(invalid(f"{at}.bootloader", bootloader, "choose either efi or bios, not both"))
    efi = bootloader.get("efi")
    if efi is not None and as_obj(efi).get("secureBoot", True) is not False:
        smm = dig(spec, "domain", "features", "smm")
        if smm is None or as_obj(smm).get("enabled") is False:
            errors.append(invalid(f"{at}.bootloader.efi.secureBoot", True,
                                  f"secure boot needs SMM: set {base}.domain.features.smm, or secureBoot: false"))
    if firmware.get("kernelBoot") is not None:
        errors += _kernel_boot(firmware["kernelBoot"], f"{at}.kernelBoot")
    return errors


def _has_pod_interface(spec: Obj) -> bool:
    pod_networks = {as_str(n.get("name")) for _, n in indexed_objs(spec.get("networks")) if n.get("pod") is not None}
    return any(as_str(i.get("name")) in pod_networks
               for _, i in indexed_objs(dig(spec, "domain", "devices", "interfaces")))


def _probes(spec: Obj, base: str) -> list[FieldError]:
    errors = []
    for key in ("readinessProbe", "livenessProbe"):
        probe = spec.get(key)
        if probe is None:
            continue
        at = f"{base}.{key}"
        handlers = [h for h in PROBE_HANDLERS if as_obj(probe).get(h) is not None]
        if len(handlers) != 1:
            errors.append(invalid(at, handlers, "a probe needs exactly one of " + ", ".join(PROBE_HANDLERS)))
        for handler in handlers:
            if handler in NETWORK_PROBE_HANDLERS and not _has_pod_interface(spec):
                errors.append(invalid(f"{at}.{handler}", probe[handler],
                                      "needs an interface on the pod network to reach the guest"))
    return errors


def _inputs(spec: Obj, base: str) -> list[FieldError]:
    errors = []
    for index, device in indexed_objs(dig(spec, "domain", "devices", "inputs")):
        at = f"{base}.domain.devices.inputs[{index}]"
        if device.get("bus") not in (None, "") and device.get("bus") not in INPUT_BUSES:
            errors.append(not_supported(f"{at}.bus", device.get("bus"), INPUT_BUSES))
        if device.get("type") not in (None, "") and device.get("type") not in INPUT_TYPES:
            errors.append(not_supported(f"{at}.type", device.get("type"), INPUT_TYPES))
    return errors


def check_misc(spec: Obj, base: str) -> list[FieldError]:
    return (_machine(spec, base) + _strategies(spec, base) + _names(spec, base) + _firmware(spec, base)
            + _probes(spec, base) + _inputs(spec, base))
