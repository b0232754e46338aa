"""VMI -> libvirt domain XML. Refuses, with every field named, what it cannot honour."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from virt_launcher.domain.devices import add_devices
from virt_launcher.domain.errors import Problems
from virt_launcher.domain.hardware import add_clock, add_cpu, add_features, add_memory, add_os, domain_uuid
from virt_launcher.domain.options import AttachableDisk, DomainOptions

Obj = dict[str, Any]
_DOMAIN_KEYS = {"cpu", "memory", "resources", "machine", "firmware", "features", "clock", "devices",
                "ioThreadsPolicy", "chassis"}
_SPEC_KEYS = {"domain", "volumes", "networks", "terminationGracePeriodSeconds", "nodeSelector", "affinity",
              "tolerations", "topologySpreadConstraints", "schedulerName", "priorityClassName", "evictionStrategy",
              "startStrategy", "hostname", "subdomain", "dnsPolicy", "dnsConfig", "livenessProbe", "readinessProbe",
              "accessCredentials", "architecture"}
KUBEVIRT_NS = "http://kubevirt.io"


def domain_name(vmi: Obj) -> str:
    meta = vmi.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}_{meta.get('name', '')}"


def domain_xml(vmi: Obj, disks: Mapping[str, AttachableDisk], options: DomainOptions) -> str:
    problems = Problems()
    spec = vmi.get("spec") or {}
    domain = spec.get("domain") or {}
    problems.unknown_keys(spec, _SPEC_KEYS, "spec")
    problems.unknown_keys(domain, _DOMAIN_KEYS, "spec.domain")
    if domain.get("ioThreadsPolicy"):
        problems.add("spec.domain.ioThreadsPolicy", "dedicated I/O threads are not supported by kubevirt-py yet")
    if spec.get("architecture") not in (None, "", "amd64"):
        problems.add("spec.architecture", f"only amd64 guests run here, not {spec['architecture']!r}")
    root = Element("domain", type=options.domain_type)
    SubElement(root, "name").text = domain_name(vmi)
    SubElement(root, "uuid").text = domain_uuid(vmi, problems)
    metadata = SubElement(SubElement(root, "metadata"), "kubevirt", xmlns=KUBEVIRT_NS)
    SubElement(metadata, "uid").text = (vmi.get("metadata") or {}).get("uid", "")
    add_memory(root, domain, problems)
    add_cpu(root, domain, options, problems)
    add_os(root, vmi, options, problems)
    add_features(root, domain, options, problems)
    add_clock(root, domain, problems)
    SubElement(root, "on_poweroff").text = "destroy"
    SubElement(root, "on_reboot").text = "restart"
    SubElement(root, "on_crash").text = "destroy"
    add_devices(root, spec, disks, options, problems)
    problems.raise_if_any()
    return tostring(root, encoding="unicode")
