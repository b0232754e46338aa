"""Defaults a VMI spec gets when it is created, as upstream's mutating webhook sets them.

Writing defaults into the stored object (rather than leaving them implicit in
virt-launcher) means `kubectl get vmi -o yaml` shows what the guest really gets, and a
later change of a default never changes a running VMI.

Every step here leaves a field alone when it has an unexpected type: mutation runs before
the API server checks the schema, and rejecting is the validators' job, not ours.

Deliberate differences from upstream (amd64):
- Disk bus: upstream defaults every disk, CD-ROM and LUN to SATA; we write down the buses
  our virt-launcher already uses when none is given (virtio disks, SATA CD-ROMs, SCSI
  LUNs), so a VMI means the same guest with or without this webhook and a LUN gets the
  only bus it can work on.
- CPU model: upstream defaults to host-model, which needs KVM; our nodes may run guests
  under TCG, so the model stays unset and virt-launcher picks what the node can do.
- Firmware UUID: upstream stores a random one; virt-launcher derives a stable one from
  the VMI's uid instead, so nothing is written here.
"""

from __future__ import annotations

from typing import Any

from virt_api.admission.quantity import read_quantity, whole_units
from virt_api.admission.shape import as_int, as_obj, as_str, indexed_objs

Obj = dict[str, Any]

DEFAULT_ARCHITECTURE = "amd64"
DEFAULT_MACHINE_TYPE = "q35"
DEFAULT_DISK_BUS = {"disk": "virtio", "cdrom": "sata", "lun": "scsi"}
DISK_KINDS = tuple(DEFAULT_DISK_BUS)
DEFAULT_NETWORK = "default"
# Probe fields below their minimum get the Kubernetes defaults, as upstream does.
PROBE_MINIMUMS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def child(parent: Obj, key: str) -> Obj | None:
    """parent[key] as an object, created when absent; None when it holds something else."""
    value = parent.get(key)
    if value is None:
        parent[key] = value = {}
    return value if isinstance(value, dict) else None


def unset(value: Any) -> bool:
    """Absent or empty, as Go's zero value reads; any other value, even of the wrong type,
    is the user's and stays for the validator to judge."""
    return value is None or value == ""


def _nonzero(raw: Any) -> bool:
    quantity = read_quantity(raw)
    return quantity.valid and quantity.present and quantity.value != 0


def _zero_or_absent(raw: Any) -> bool:
    quantity = read_quantity(raw)
    return quantity.valid and (not quantity.present or quantity.value == 0)


# --- the steps, in upstream's order ---------------------------------------------------

def set_architecture(spec: Obj) -> None:
    if unset(spec.get("architecture")):
        spec["architecture"] = DEFAULT_ARCHITECTURE


def set_machine_type(domain: Obj) -> None:
    machine = child(domain, "machine")
    if machine is not None and unset(machine.get("type")):
        machine["type"] = DEFAULT_MACHINE_TYPE


def set_resource_requests(domain: Obj) -> None:
    """Requests follow limits when only limits are given (a pod without requests gets its
    limits as requests too), and the memory request follows the guest memory."""
    resources = domain.get("resources", {})
    if not isinstance(resources, dict):
        return
    requests = resources.get("requests", {})
    limits = as_obj(resources.get("limits"))
    if not isinstance(requests, dict):
        return
    wanted = dict(requests)
    for resource in ("cpu", "memory"):
        if _nonzero(limits.get(resource)) and _zero_or_absent(requests.get(resource)):
            wanted[resource] = limits[resource]
    guest = as_obj(domain.get("memory")).get("guest")
    guest_bytes = read_quantity(guest).value
    if "memory" not in wanted and guest_bytes is not None and guest_bytes > 0:
        wanted["memory"] = guest
    if wanted != requests:
        resources["requests"] = wanted
        domain["resources"] = resources


def set_guest_memory(domain: Obj) -> None:
    """The guest sees the memory request (or limit) when memory.guest is not given."""
    memory = domain.get("memory", {})
    if not isinstance(memory, dict) or memory.get("guest") is not None:
        return
    resources = as_obj(domain.get("resources"))
    for raw in (as_obj(resources.get("requests")).get("memory"), as_obj(resources.get("limits")).get("memory")):
        if _nonzero(raw):
            memory["guest"] = raw
            domain["memory"] = memory
            return


def _topology_unset(cpu: Obj) -> bool:
    # An explicit 0 means "unset" upstream (uint32); any other non-integer is left for
    # the validator to name.
    return all(cpu.get(key) is None or as_int(cpu.get(key)) == 0 for key in ("cores", "sockets", "threads"))


def set_cpu_topology(domain: Obj) -> None:
    """No topology given: one core and thread per socket, as many sockets as whole CPUs
    are asked for (sockets perform best, upstream found), at least one."""
    cpu = child(domain, "cpu")
    if cpu is None or not _topology_unset(cpu):
        return
    resources = as_obj(domain.get("resources"))
    sockets = 1
    for raw in (as_obj(resources.get("limits")).get("cpu"), as_obj(resources.get("requests")).get("cpu")):
        quantity = read_quantity(raw)
        if quantity.valid and quantity.present:
            sockets = max(1, whole_units(quantity.value))
            break
    cpu.update({"sockets": sockets, "cores": 1, "threads": 1})


def set_pull_policies(spec: Obj) -> None:
    """Container disks: a floating tag is pulled every time, a pinned one only once."""
    for _, volume in indexed_objs(spec.get("volumes")):
        disk = volume.get("containerDisk")
        image = as_str(as_obj(disk).get("image"))
        if image is None or not unset(disk.get("imagePullPolicy")):
            continue
        floating = image.endswith(":latest") or not any(c in image for c in ":@")
        disk["imagePullPolicy"] = "Always" if floating else "IfNotPresent"


def set_pod_network(spec: Obj, devices: Obj) -> None:
    """Nothing said about networking: one masquerade interface on the pod network,
    unless autoattachPodInterface is false."""
    if devices.get("autoattachPodInterface") is False:
        return
    if spec.get("networks") not in (None, []) or devices.get("interfaces") not in (None, []):
        return
    devices["interfaces"] = [{"name": DEFAULT_NETWORK, "masquerade": {}}]
    spec["networks"] = [{"name": DEFAULT_NETWORK, "pod": {}}]


def add_volume_disks(spec: Obj, devices: Obj) -> None:
    """A volume nobody attached becomes a disk of its own name."""
    disks = devices.get("disks", [])
    if not isinstance(disks, list):
        return
    attached = {as_str(d.get("name")) for _, d in indexed_objs(disks)}
    attached |= {as_str(f.get("name")) for _, f in indexed_objs(devices.get("filesystems"))}
    added = [{"name": v["name"]} for _, v in indexed_objs(spec.get("volumes"))
             if isinstance(v.get("name"), str) and v["name"] not in attached and v.get("memoryDump") is None]
    if added:
        devices["disks"] = disks + added


def set_disk_devices(devices: Obj) -> None:
    for _, disk in indexed_objs(devices.get("disks")):
        if all(disk.get(kind) is None for kind in DISK_KINDS):
            disk["disk"] = {}
        for kind, bus in DEFAULT_DISK_BUS.items():
            target = disk.get(kind)
            if isinstance(target, dict) and unset(target.get("bus")):
                target["bus"] = bus
        cdrom = disk.get("cdrom")
        if isinstance(cdrom, dict):
            cdrom.setdefault("readonly", True)
            cdrom.setdefault("tray", "closed")


def set_inputs(devices: Obj) -> None:
    for _, device in indexed_objs(devices.get("inputs")):
        if unset(device.get("bus")):
            device["bus"] = "usb"
        if unset(device.get("type")):
            device["type"] = "tablet"


def set_probes(spec: Obj) -> None:
    for key in ("readinessProbe", "livenessProbe"):
        probe = spec.get(key)
        if not isinstance(probe, dict):
            continue
        for field, default in PROBE_MINIMUMS.items():
            value = probe.get(field)
            if value is None or (as_int(value) is not None and value < 1):
                probe[field] = default


def apply_vmi_defaults(spec: Obj) -> None:
    """Default a VMI spec in place (callers pass a copy)."""
    domain = child(spec, "domain")
    set_architecture(spec)
    set_pull_policies(spec)
    set_probes(spec)
    if domain is None:
        return
    set_machine_type(domain)
    set_resource_requests(domain)
    set_guest_memory(domain)
    set_cpu_topology(domain)
    devices = child(domain, "devices")
    if devices is None:
        return
    set_pod_network(spec, devices)
    add_volume_disks(spec, devices)
    set_disk_devices(devices)
    set_inputs(devices)

