"""kubevirt_vmi_info: one series of value 1 per VMI in the cache, whose labels describe it,
as upstream's virt-controller exports it (pkg/monitoring/metrics/virt-controller/
vmistats_collector.go), computed at scrape time from the VMI controller's caches.

Labels, in upstream's order: node, namespace, name; phase (lower case); os, workload and
flavor (the vm.kubevirt.io/ annotations a template sets); instance_type and preference;
guest_os_kernel_release, guest_os_machine (the machine type), guest_os_arch,
guest_os_name, guest_os_version_id (from status.guestOSInfo, filled by a guest agent);
evictable, outdated; vmi_pod (the VMI's running launcher pod on its node). A value that is
not known is the empty string, which Prometheus treats as no label.

Upstream names the instancetype or preference only when the object carries a vendor label
it trusts (kubevirt.io, redhat.com) and says "<other>" for the rest, so that users' own
names never become label values. This controller keeps no instancetype caches, so every
VMI expanded from one reports "<other>".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from kubevirt_api import labels
from kubevirt_api.phases import EvictionStrategy, VMIConditionType
from virt_controller.metrics.lister import Lister

Obj = dict[str, Any]

METRIC = "kubevirt_vmi_info"
LABELS = ("node", "namespace", "name", "phase", "os", "workload", "flavor", "instance_type", "preference",
          "guest_os_kernel_release", "guest_os_machine", "guest_os_arch", "guest_os_name", "guest_os_version_id",
          "evictable", "outdated", "vmi_pod")
TEMPLATE_ANNOTATION_PREFIX = "vm.kubevirt.io/"
OTHER = "<other>"


def _annotated(annotations: dict[str, str], *keys: str) -> str:
    return OTHER if any(key in annotations for key in keys) else ""


def _condition_true(vmi: Obj, kind: VMIConditionType) -> bool:
    return any(c.get("type") == kind.value and c.get("status") == "True"
               for c in (vmi.get("status") or {}).get("conditions") or [])


def evictable(vmi: Obj) -> bool:
    """False for a VMI that eviction must live-migrate but that cannot be (or is not yet
    known to be): upstream's answer, so a drain blocked by it can be alerted on."""
    strategy = (vmi.get("spec") or {}).get("evictionStrategy")
    must_migrate = strategy == EvictionStrategy.LIVE_MIGRATE.value
    return not must_migrate or _condition_true(vmi, VMIConditionType.LIVE_MIGRATABLE)


def running_pod(vmi: Obj, pods: list[Obj]) -> str:
    node = (vmi.get("status") or {}).get("nodeName")
    for pod in pods:
        if ((pod["metadata"].get("labels") or {}).get(labels.CREATED_BY_LABEL) == vmi["metadata"].get("uid")
                and (pod.get("status") or {}).get("phase") == "Running"
                and (pod.get("spec") or {}).get("nodeName") == node):
            return str(pod["metadata"]["name"])
    return ""


def info_labels(vmi: Obj, pods: list[Obj]) -> list[str]:
    meta, status = vmi["metadata"], vmi.get("status") or {}
    annotations = meta.get("annotations") or {}
    guest = status.get("guestOSInfo") or {}
    template = [str(annotations.get(TEMPLATE_ANNOTATION_PREFIX + key, "")) for key in ("os", "workload", "flavor")]
    outdated = labels.OUTDATED_LAUNCHER_IMAGE_LABEL in (meta.get("labels") or {})
    return [str(status.get("nodeName") or ""), str(meta.get("namespace") or ""), str(meta["name"]),
            str(status.get("phase") or "").lower(), *template,
            _annotated(annotations, labels.INSTANCETYPE_ANNOTATION, labels.CLUSTER_INSTANCETYPE_ANNOTATION),
            _annotated(annotations, labels.PREFERENCE_ANNOTATION, labels.CLUSTER_PREFERENCE_ANNOTATION),
            str(guest.get("kernelRelease") or ""), str((status.get("machine") or {}).get("type") or ""),
            str(guest.get("machine") or ""), str(guest.get("name") or ""), str(guest.get("versionId") or ""),
            str(evictable(vmi)).lower(), str(outdated).lower(), running_pod(vmi, pods)]


def _family() -> GaugeMetricFamily:
    return GaugeMetricFamily(METRIC, "One series per VirtualMachineInstance; its labels describe it.", labels=LABELS)


class VMIInfoCollector:
    """``pods_of`` returns the launcher pods of a VMI's UID (the VMI controller's pod cache)."""

    def __init__(self, vmis: Lister, pods_of: Callable[[str], list[Obj]]) -> None:
        self._vmis = vmis
        self._pods_of = pods_of

    def describe(self) -> Iterator[Metric]:
        return iter([_family()])

    def collect(self) -> Iterator[Metric]:
        family = _family()
        for vmi in self._vmis.list():
            family.add_metric(info_labels(vmi, self._pods_of(str(vmi["metadata"].get("uid")))), 1)
        return iter([family])
