"""What a launcher reports of its domain's resource use (Cmd GetDomainStats), the figures
virt-handler turns into upstream's kubevirt_vmi_* domain metrics.

The report, as JSON:

    {"cpu":    {"time", "user", "system": nanoseconds; "vcpus": count},
     "memory": {"max_kib", "current_kib", and what virDomainMemoryStats says: rss, actual,
                available, unused, usable, disk_caches, swap_in, swap_out (KiB),
                major_fault, minor_fault (counts)},
     "vcpu":   [{"id", "state": "running" | "blocked" | "offline" | "unknown",
                 "time", "wait", "delay": nanoseconds}],
     "block":  [{"name": target dev, "alias": the VMI's disk name, "rd_reqs", "rd_bytes",
                 "wr_reqs", "wr_bytes", "fl_reqs", and "rd_times", "wr_times", "fl_times" in ns}],
     "net":    [{"name": host device, "alias": the VMI's interface name, "rx_bytes",
                 "rx_pkts", "rx_errs", "rx_drop", and the same for tx}]}

A figure libvirt does not know is left out, never reported as 0. Per-device names are
libvirt's bulk-stats keys with dots as underscores ("block.0.rd.reqs" is block[0]["rd_reqs"]).

Bulk stats (virConnectGetAllDomainStats, one call) is what upstream reads, and QEMU answers
it in full. libvirt's test driver answers it with nothing but the state, so each section it
leaves empty is asked for the old way, device by device (virDomainInfo, virDomainGetVcpus,
virDomainBlockStats, virDomainInterfaceStats), which that driver does implement. QEMU's
user-mode (slirp) interfaces have no host device, so neither way has counters for them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import libvirt

Obj = dict[str, Any]

_BULK_GROUPS = (libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_VCPU
                | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
_VCPU_STATES = {libvirt.VIR_VCPU_OFFLINE: "offline", libvirt.VIR_VCPU_RUNNING: "running",
                libvirt.VIR_VCPU_BLOCKED: "blocked"}
# The fields of virDomainBlockStats' and virDomainInterfaceStats' tuples, in their order,
# under the bulk-stats names; None: a field without a bulk counterpart (block errors).
_BLOCK_TUPLE = ("rd_reqs", "rd_bytes", "wr_reqs", "wr_bytes", None)
_NET_TUPLE = ("rx_bytes", "rx_pkts", "rx_errs", "rx_drop", "tx_bytes", "tx_pkts", "tx_errs", "tx_drop")
_ALIAS_PREFIX = "ua-"  # the converter's user alias: ua-<name in the VMI spec>


@dataclass(frozen=True)
class Devices:
    """Target device -> the VMI's name for it, from the live domain XML."""
    disks: Mapping[str, str]
    interfaces: Mapping[str, str]


def devices_of(domain_xml: str) -> Devices:
    root = ET.fromstring(domain_xml)
    return Devices(_aliases(root, "devices/disk"), _aliases(root, "devices/interface"))


def _aliases(root: ET.Element, path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in root.iterfind(path):
        target, alias = element.find("target"), element.find("alias")
        dev = target.get("dev") if target is not None else None
        if dev:  # a user-mode interface has no host device
            found[dev] = alias.get("name", "").removeprefix(_ALIAS_PREFIX) if alias is not None else ""
    return found


def per_device(bulk: Mapping[str, Any], group: str, count_key: str = "count") -> list[Obj]:
    """The ``group.N.*`` entries of a bulk-stats record, one dict per N < ``group.<count_key>``."""
    count = bulk.get(f"{group}.{count_key}")
    if not isinstance(count, int):
        return []
    items: list[Obj] = [{} for _ in range(count)]
    prefix = f"{group}."
    for key, value in bulk.items():
        index, _, field = key.removeprefix(prefix).partition(".")
        if key.startswith(prefix) and index.isdigit() and int(index) < count and field:
            items[int(index)][field.replace(".", "_")] = value
    return items


def _named(items: list[Obj], aliases: Mapping[str, str]) -> list[Obj]:
    named = [item for item in items if item.get("name")]
    for item in named:
        if aliases.get(item["name"]):
            item["alias"] = aliases[item["name"]]
    return named


def _from_tuple(fields: tuple[str | None, ...], values: tuple[int, ...]) -> Obj:
    # libvirt reports -1 for a counter the driver does not keep.
    return {field: value for field, value in zip(fields, values) if field is not None and value >= 0}


def _one_by_one(aliases: Mapping[str, str], fields: tuple[str | None, ...],
                ask: Callable[[str], tuple[int, ...]]) -> list[Obj]:
    items = []
    for dev, alias in aliases.items():
        try:
            values = ask(dev)
        except libvirt.libvirtError:
            continue  # a device without statistics (an empty CD-ROM, ...) leaves the others alone
        items.append({"name": dev, **({"alias": alias} if alias else {}), **_from_tuple(fields, values)})
    return items


def _bulk(connection: libvirt.virConnect, domain: libvirt.virDomain) -> Mapping[str, Any]:
    try:
        return connection.domainListGetStats([domain], _BULK_GROUPS)[0][1]
    except libvirt.libvirtError:
        return {}  # a driver without bulk stats: every section is asked for one by one


def _vcpus(bulk: Mapping[str, Any], domain: libvirt.virDomain) -> list[Obj]:
    # Offline vcpus (up to vcpu.maximum) have no entries; their numbers stay their ids.
    found = {number: item for number, item in enumerate(per_device(bulk, "vcpu", count_key="maximum")) if item}
    if not found:
        try:
            # virDomainGetVcpus: (number, state, cpu time in ns, physical cpu) per vcpu.
            found = {number: {"state": state, "time": time} for number, state, time, _ in domain.vcpus()[0]}
        except libvirt.libvirtError:
            return []
    return [{"id": number, **item, "state": _VCPU_STATES.get(item.get("state"), "unknown")}
            for number, item in found.items()]


def _memory(domain: libvirt.virDomain) -> Obj:
    try:
        return {key: value for key, value in domain.memoryStats().items() if isinstance(value, int)}
    except libvirt.libvirtError:
        return {}  # no balloon device: only what virDomainInfo says


def domain_stats(connection: libvirt.virConnect, domain: libvirt.virDomain) -> Obj:
    _, max_kib, current_kib, vcpus, cpu_time = domain.info()
    report: Obj = {"cpu": {"time": cpu_time, "vcpus": vcpus},
                   "memory": {"max_kib": max_kib, "current_kib": current_kib}}
    if not domain.isActive():
        return report
    devices = devices_of(domain.XMLDesc(0))
    bulk = _bulk(connection, domain)
    report["cpu"].update({key: bulk[f"cpu.{key}"] for key in ("time", "user", "system") if f"cpu.{key}" in bulk})
    report["memory"].update(_memory(domain))
    report["vcpu"] = _vcpus(bulk, domain)
    report["block"] = (_named(per_device(bulk, "block"), devices.disks)
                       or _one_by_one(devices.disks, _BLOCK_TUPLE, domain.blockStats))
    report["net"] = (_named(per_device(bulk, "net"), devices.interfaces)
                     or _one_by_one(devices.interfaces, _NET_TUPLE, domain.interfaceStats))
    return report
