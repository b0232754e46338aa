"""CPU, memory, machine, firmware, features and clock."""

from __future__ import annotations

import uuid
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from kube_client.quantity import parse_quantity
from virt_launcher.domain.errors import Problems
from virt_launcher.domain.options import DomainOptions

Obj = dict[str, Any]
DEFAULT_MACHINE = "q35"
_HOST_CPU_MODES = {"host-model", "host-passthrough"}
# Upstream's timer names -> libvirt's.
_TIMER_NAMES = {"hpet": "hpet", "pit": "pit", "rtc": "rtc", "kvm": "kvmclock", "hyperv": "hypervclock"}


def quantity_bytes(value: Any, field: str, problems: Problems) -> int | None:
    try:
        amount = int(parse_quantity(value))
    except (ValueError, TypeError, ArithmeticError):
        problems.add(field, f"invalid quantity {value!r}")
        return None
    if amount <= 0:
        problems.add(field, f"must be greater than zero, got {value!r}")
        return None
    return amount


def guest_memory(domain: Obj, problems: Problems) -> int | None:
    """Memory the guest sees: memory.guest, else the pod's memory request, else its limit."""
    memory = domain.get("memory") or {}
    resources = domain.get("resources") or {}
    for field, value in (("spec.domain.memory.guest", memory.get("guest")),
                         ("spec.domain.resources.requests.memory", (resources.get("requests") or {}).get("memory")),
                         ("spec.domain.resources.limits.memory", (resources.get("limits") or {}).get("memory"))):
        if value is not None:
            return quantity_bytes(value, field, problems)
    problems.add("spec.domain.memory.guest", "no memory for the guest: set memory.guest or resources.requests.memory")
    return None


def add_memory(root: Element, domain: Obj, problems: Problems) -> None:
    memory = domain.get("memory") or {}
    problems.unknown_keys(memory, {"guest"}, "spec.domain.memory")
    amount = guest_memory(domain, problems)
    if amount is not None:
        # QEMU allocates in whole MiB; round up so the guest never gets less than asked.
        kib = -(-amount // (1024 * 1024)) * 1024
        SubElement(root, "memory", unit="KiB").text = str(kib)
        SubElement(root, "currentMemory", unit="KiB").text = str(kib)


def add_cpu(root: Element, domain: Obj, options: DomainOptions, problems: Problems) -> None:
    cpu = domain.get("cpu") or {}
    problems.unknown_keys(cpu, {"cores", "sockets", "threads", "model", "features", "maxSockets"}, "spec.domain.cpu")
    topology = {key: int(cpu.get(key) or 1) for key in ("sockets", "cores", "threads")}
    for key, value in topology.items():
        if value < 1:
            problems.add(f"spec.domain.cpu.{key}", "must be at least 1")
    SubElement(root, "vcpu", placement="static").text = str(topology["sockets"] * topology["cores"] *
                                                          topology["threads"])
    model = cpu.get("model")
    if model in _HOST_CPU_MODES and options.domain_type != "kvm":
        problems.add("spec.domain.cpu.model", f"{model} needs KVM; this node runs guests under TCG emulation")
    if model in _HOST_CPU_MODES:
        element = SubElement(root, "cpu", mode=model)
    elif model:
        element = SubElement(root, "cpu", mode="custom", match="exact")
        SubElement(element, "model", fallback="forbid").text = model
    else:
        element = SubElement(root, "cpu")
    SubElement(element, "topology", sockets=str(topology["sockets"]), dies="1", cores=str(topology["cores"]),
               threads=str(topology["threads"]))
    for index, feature in enumerate(cpu.get("features") or []):
        policy = feature.get("policy", "require")
        if not feature.get("name"):
            problems.add(f"spec.domain.cpu.features[{index}].name", "required")
            continue
        SubElement(element, "feature", policy=policy, name=feature["name"])


def add_os(root: Element, vmi: Obj, options: DomainOptions, problems: Problems) -> None:
    domain = vmi["spec"]["domain"]
    firmware = domain.get("firmware") or {}
    problems.unknown_keys(firmware, {"uuid", "serial", "bootloader", "kernelBoot"}, "spec.domain.firmware")
    machine = (domain.get("machine") or {}).get("type") or DEFAULT_MACHINE
    os_element = SubElement(root, "os")
    SubElement(os_element, "type", arch="x86_64", machine=machine).text = "hvm"
    bootloader = firmware.get("bootloader") or {}
    problems.unknown_keys(bootloader, {"bios", "efi"}, "spec.domain.firmware.bootloader")
    if "efi" in bootloader:
        _efi(os_element, bootloader.get("efi") or {}, domain, options, problems)
    elif (bootloader.get("bios") or {}).get("useSerial"):
        SubElement(os_element, "bios", useserial="yes")
    kernel_boot = firmware.get("kernelBoot")
    if kernel_boot:
        if options.kernel is None:
            problems.add("spec.domain.firmware.kernelBoot.container.kernelPath", "no kernel could be extracted")
        else:
            SubElement(os_element, "kernel").text = str(options.kernel)
            if options.initrd is not None:
                SubElement(os_element, "initrd").text = str(options.initrd)
            if kernel_boot.get("kernelArgs"):
                SubElement(os_element, "cmdline").text = kernel_boot["kernelArgs"]
    SubElement(os_element, "smbios", mode="sysinfo")
    sysinfo = SubElement(root, "sysinfo", type="smbios")
    system = SubElement(sysinfo, "system")
    SubElement(system, "entry", name="manufacturer").text = "KubeVirt"
    SubElement(system, "entry", name="product").text = "None"
    SubElement(system, "entry", name="uuid").text = domain_uuid(vmi, problems)
    if firmware.get("serial"):
        SubElement(system, "entry", name="serial").text = firmware["serial"]


def domain_uuid(vmi: Obj, problems: Problems) -> str:
    """firmware.uuid, else one derived from the VMI's uid so it is stable across restarts."""
    given = ((vmi["spec"]["domain"].get("firmware") or {}).get("uuid"))
    if given:
        try:
            return str(uuid.UUID(given))
        except ValueError:
            problems.add("spec.domain.firmware.uuid", f"invalid UUID {given!r}")
    meta = vmi.get("metadata") or {}
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubevirt.io/{meta.get('namespace')}/{meta.get('name')}/"
                                            f"{meta.get('uid', '')}"))


def _efi(os_element: Element, efi: Obj, domain: Obj, options: DomainOptions, problems: Problems) -> None:
    if options.efi_code is None:
        problems.add("spec.domain.firmware.bootloader.efi", "EFI firmware (OVMF) is not installed on this node")
        return
    secure = bool(efi.get("secureBoot", True))
    smm = ((domain.get("features") or {}).get("smm") or {})
    if secure and smm.get("enabled") is False:
        problems.add("spec.domain.firmware.bootloader.efi.secureBoot", "needs features.smm enabled")
    loader = SubElement(os_element, "loader", readonly="yes", type="pflash", secure="yes" if secure else "no")
    loader.text = str(options.efi_code)
    if options.nvram is not None:
        nvram = SubElement(os_element, "nvram")
        if options.efi_vars_template is not None:
            nvram.set("template", str(options.efi_vars_template))
        nvram.text = str(options.nvram)


def _state(value: Obj | None) -> bool | None:
    """A FeatureState: present means on unless enabled is false."""
    if value is None:
        return None
    return value.get("enabled", True) is not False


def add_features(root: Element, domain: Obj, options: DomainOptions, problems: Problems) -> None:
    features = domain.get("features") or {}
    problems.unknown_keys(features, {"acpi", "apic", "smm", "pvspinlock", "kvm", "hyperv"}, "spec.domain.features")
    element = SubElement(root, "features")
    # ACPI is on unless switched off: graceful shutdown needs the power button.
    if _state(features.get("acpi")) is not False:
        SubElement(element, "acpi")
    if _state(features.get("apic")):
        SubElement(element, "apic")
    if features.get("hyperv"):
        problems.add("spec.domain.features.hyperv", "Hyper-V enlightenments are not supported by kubevirt-py yet")
    smm = _state(features.get("smm"))
    efi = "efi" in (((domain.get("firmware") or {}).get("bootloader")) or {})
    if smm or (smm is None and efi):
        SubElement(element, "smm", state="on")
    spinlock = _state(features.get("pvspinlock"))
    if spinlock is not None:
        SubElement(element, "pvspinlock", state="on" if spinlock else "off")
    if (features.get("kvm") or {}).get("hidden"):
        if options.domain_type != "kvm":
            problems.add("spec.domain.features.kvm.hidden", "needs KVM; this node runs guests under TCG emulation")
        else:
            SubElement(SubElement(element, "kvm"), "hidden", state="on")


def add_clock(root: Element, domain: Obj, problems: Problems) -> None:
    clock = domain.get("clock") or {}
    problems.unknown_keys(clock, {"utc", "timezone", "timer"}, "spec.domain.clock")
    if clock.get("timezone"):
        element = SubElement(root, "clock", offset="timezone", timezone=clock["timezone"])
    else:
        element = SubElement(root, "clock", offset="utc")
        offset = (clock.get("utc") or {}).get("offsetSeconds")
        if offset:
            element.set("adjustment", str(int(offset)))
            element.set("basis", "utc")
    for name, timer in (clock.get("timer") or {}).items():
        if name not in _TIMER_NAMES:
            problems.add(f"spec.domain.clock.timer.{name}", "is not a supported timer")
            continue
        attributes = {"name": _TIMER_NAMES[name]}
        if timer.get("present") is not None:
            attributes["present"] = "yes" if timer["present"] else "no"
        if timer.get("tickPolicy"):
            attributes["tickpolicy"] = timer["tickPolicy"]
        if timer.get("track"):
            attributes["track"] = timer["track"]
        SubElement(element, "timer", **attributes)
