"""virt-handler's domain metrics, as upstream exports them (pkg/monitoring/metrics/
virt-handler/domainstats): CPU, vcpu, memory, network and storage figures of every VMI
running on this node, from its launcher's GetDomainStats report (virt_launcher.domain_stats
describes it), asked at scrape time by virt_handler.launcher_stats.

Every series carries upstream's labels: name, namespace and node, one
``kubernetes_vmi_label_<key>`` per label of the VMI (the key's '.', '/' and '-' as '_'),
and per device: ``id`` and ``state`` (running, blocked, offline) for vcpus, ``interface``
(the VMI's interface name) for network counters, ``drive`` (the VMI's disk name) for
storage counters. A figure the launcher's libvirt does not report is left out, as upstream
leaves it out: libvirt's test driver, for one, keeps no cpu user/system split nor block
times, and QEMU's user-mode interfaces have no host-side counters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from kubevirt_api.phases import VMIPhase
from virt_handler.launcher_stats import LauncherStatsScraper

Obj = dict[str, Any]
log = logging.getLogger(__name__)

NANOSECONDS = 1e-9
KIB = 1024
VMI_LABEL_PREFIX = "kubernetes_vmi_label_"
_LABEL_KEY_SEPARATORS = str.maketrans({".": "_", "/": "_", "-": "_"})


@dataclass(frozen=True)
class Series:
    metric: str
    help: str
    section: str  # of the launcher's report: cpu, memory (one dict each), vcpu, net, block (one per device)
    key: str      # the figure in that section
    scale: float = 1.0
    counter: bool = True
    # Labels every sample of the series carries (the deprecated traffic series' direction).
    fixed: tuple[tuple[str, str], ...] = ()
    # Labels read from the device's entry (a vcpu's state).
    from_entry: tuple[tuple[str, str], ...] = ()


# Upstream still exports the old name, both directions in one counter told apart by "type".
_DEPRECATED_TRAFFIC = "[Deprecated] Bytes received (type rx) and sent (type tx) on each interface."


def _gauge(metric: str, help: str, section: str, key: str, scale: float = 1.0) -> Series:
    return Series(metric, help, section, key, scale, counter=False)


SERIES = (
    Series("kubevirt_vmi_cpu_usage_seconds_total", "CPU time the domain used, guest vcpus and hypervisor "
           "threads together.", "cpu", "time", NANOSECONDS),
    Series("kubevirt_vmi_cpu_user_usage_seconds_total", "CPU time the domain used in user mode.", "cpu", "user",
           NANOSECONDS),
    Series("kubevirt_vmi_cpu_system_usage_seconds_total", "CPU time the domain used in kernel mode.", "cpu",
           "system", NANOSECONDS),
    Series("kubevirt_vmi_vcpu_seconds_total", "CPU time each vcpu (id) used, without hypervisor time, labelled "
           "with the vcpu's current state: running, blocked or offline.", "vcpu", "time", NANOSECONDS,
           from_entry=(("state", "state"),)),
    Series("kubevirt_vmi_vcpu_wait_seconds_total", "Time each vcpu spent waiting for I/O.", "vcpu", "wait",
           NANOSECONDS),
    Series("kubevirt_vmi_vcpu_delay_seconds_total", "Time each vcpu spent runnable but queued for a host CPU.",
           "vcpu", "delay", NANOSECONDS),
    _gauge("kubevirt_vmi_memory_resident_bytes", "Resident set size of the domain's hypervisor process.",
           "memory", "rss", KIB),
    _gauge("kubevirt_vmi_memory_available_bytes", "Memory the guest OS sees as its total (approximate with a "
           "balloon in use).", "memory", "available", KIB),
    _gauge("kubevirt_vmi_memory_unused_bytes", "Memory the guest OS leaves entirely unused (not even as "
           "reclaimable cache).", "memory", "unused", KIB),
    _gauge("kubevirt_vmi_memory_cached_bytes", "Guest memory holding I/O caches that could be reclaimed.",
           "memory", "disk_caches", KIB),
    _gauge("kubevirt_vmi_memory_swap_in_traffic_bytes", "Data the guest has read from its swap space.", "memory",
           "swap_in", KIB),
    _gauge("kubevirt_vmi_memory_swap_out_traffic_bytes", "Data the guest has written to its swap space.",
           "memory", "swap_out", KIB),
    Series("kubevirt_vmi_memory_pgmajfault_total", "Page faults in the guest that needed disk I/O.", "memory",
           "major_fault"),
    Series("kubevirt_vmi_memory_pgminfault_total", "Page faults in the guest served without disk I/O.", "memory",
           "minor_fault"),
    _gauge("kubevirt_vmi_memory_actual_balloon_bytes", "The memory balloon's current size.", "memory", "actual",
           KIB),
    _gauge("kubevirt_vmi_memory_usable_bytes", "Guest memory the balloon could reclaim without making the guest "
           "swap (MemAvailable).", "memory", "usable", KIB),
    _gauge("kubevirt_vmi_memory_domain_bytes", "Memory assigned to the domain (its current memory in the domain "
           "XML).", "memory", "current_kib", KIB),
    Series("kubevirt_vmi_network_receive_bytes_total", "Bytes received on each interface.", "net", "rx_bytes"),
    Series("kubevirt_vmi_network_transmit_bytes_total", "Bytes sent on each interface.", "net", "tx_bytes"),
    Series("kubevirt_vmi_network_receive_packets_total", "Packets received on each interface.", "net", "rx_pkts"),
    Series("kubevirt_vmi_network_transmit_packets_total", "Packets sent on each interface.", "net", "tx_pkts"),
    Series("kubevirt_vmi_network_receive_errors_total", "Receive errors on each interface.", "net", "rx_errs"),
    Series("kubevirt_vmi_network_transmit_errors_total", "Transmit errors on each interface.", "net", "tx_errs"),
    Series("kubevirt_vmi_network_receive_packets_dropped_total", "Received packets dropped on each interface.",
           "net", "rx_drop"),
    Series("kubevirt_vmi_network_transmit_packets_dropped_total", "Packets to send dropped on each interface.",
           "net", "tx_drop"),
    Series("kubevirt_vmi_network_traffic_bytes_total", _DEPRECATED_TRAFFIC, "net", "rx_bytes", fixed=(("type", "rx"),)),
    Series("kubevirt_vmi_network_traffic_bytes_total", _DEPRECATED_TRAFFIC, "net", "tx_bytes", fixed=(("type", "tx"),)),
    Series("kubevirt_vmi_storage_iops_read_total", "Read requests on each drive.", "block", "rd_reqs"),
    Series("kubevirt_vmi_storage_iops_write_total", "Write requests on each drive.", "block", "wr_reqs"),
    Series("kubevirt_vmi_storage_read_traffic_bytes_total", "Bytes read from each drive.", "block", "rd_bytes"),
    Series("kubevirt_vmi_storage_write_traffic_bytes_total", "Bytes written to each drive.", "block", "wr_bytes"),
    Series("kubevirt_vmi_storage_read_times_seconds_total", "Time spent on reads from each drive.", "block",
           "rd_times", NANOSECONDS),
    Series("kubevirt_vmi_storage_write_times_seconds_total", "Time spent on writes to each drive.", "block",
           "wr_times", NANOSECONDS),
    Series("kubevirt_vmi_storage_flush_requests_total", "Flush requests on each drive.", "block", "fl_reqs"),
    Series("kubevirt_vmi_storage_flush_times_seconds_total", "Time spent on flushes of each drive.", "block",
           "fl_times", NANOSECONDS),
)


def vmi_labels(vmi: Obj, node_name: str) -> dict[str, str]:
    meta = vmi["metadata"]
    found = {VMI_LABEL_PREFIX + key.translate(_LABEL_KEY_SEPARATORS): str(value)
             for key, value in (meta.get("labels") or {}).items()}
    found.update(name=str(meta["name"]), namespace=str(meta.get("namespace") or ""), node=node_name)
    return found


def device_entries(report: Obj, section: str) -> list[tuple[dict[str, str], Obj]]:
    """The report's entries of a section, each with the labels that name its device."""
    if section in ("cpu", "memory"):
        return [({}, report.get(section) or {})]
    entries = [entry for entry in report.get(section) or [] if isinstance(entry, dict)]
    if section == "vcpu":
        return [({"id": str(entry.get("id"))}, entry) for entry in entries]
    label = "interface" if section == "net" else "drive"
    return [({label: str(entry.get("alias") or entry["name"])}, entry) for entry in entries if entry.get("name")]


def _families() -> dict[str, Metric]:
    families: dict[str, Metric] = {}
    for series in SERIES:
        if series.metric not in families:
            kind = CounterMetricFamily if series.counter else GaugeMetricFamily
            families[series.metric] = kind(series.metric, series.help)
    return families


def add_samples(families: dict[str, Metric], labels: dict[str, str], report: Obj) -> None:
    for series in SERIES:
        family = families[series.metric]
        sample = f"{family.name}_total" if series.counter else family.name
        for device, entry in device_entries(report, series.section):
            value = entry.get(series.key)
            if not isinstance(value, (int, float)):
                continue  # not reported by this launcher's libvirt
            entry_labels = {name: str(entry.get(key, "unknown")) for name, key in series.from_entry}
            family.add_sample(sample, {**labels, **device, **dict(series.fixed), **entry_labels},
                              value * series.scale)


def running(vmi: Obj) -> bool:
    return (vmi.get("status") or {}).get("phase") == VMIPhase.RUNNING.value


class DomainStatsCollector:
    """``vmis`` lists the VMIs of this node (the handler's informer); the scrape runs on the
    scraping thread and returns within the scraper's deadline."""

    def __init__(self, node_name: str, vmis: Callable[[], list[Obj]], scraper: LauncherStatsScraper) -> None:
        self._node_name = node_name
        self._vmis = vmis
        self._scraper = scraper

    def describe(self) -> Iterator[Metric]:
        # Names only, so the registry can refuse a duplicate without asking any launcher.
        return iter(_families().values())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        try:
            reports = self._scraper.scrape(vmi for vmi in self._vmis() if running(vmi))
        except Exception:  # noqa: BLE001 (a failed scrape must still answer, with what else there is)
            log.exception("domain stats scrape failed")
            reports = []
        for vmi, report in reports:
            add_samples(families, vmi_labels(vmi, self._node_name), report)
        return iter(families.values())
