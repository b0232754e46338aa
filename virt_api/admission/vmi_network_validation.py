"""Interfaces and networks of a VMI spec: paired one to one by name."""

from __future__ import annotations

import re
from typing import Any

from kube_schema.errors import FieldError
from virt_api.admission.causes import MAX_LIST_LENGTH, duplicate, invalid, not_supported, required, too_many
from virt_api.admission.naming import unique_names
from virt_api.admission.shape import as_int, as_list, as_obj, as_str, dig, indexed_objs

Obj = dict[str, Any]

NETWORK_TYPES = ("pod", "multus")
# Bindings that need the pod network, because they are implemented inside the pod.
POD_ONLY_BINDINGS = ("masquerade", "slirp", "passt")
INTERFACE_MODELS = ("e1000", "e1000e", "ne2k_pci", "pcnet", "rtl8139", "virtio")
INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MAC_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
PORT_PROTOCOLS = ("TCP", "UDP")


def _networks(spec: Obj, where: str) -> tuple[dict[str, Obj], list[FieldError]]:
    first, errors = unique_names(spec.get("networks"), where, "network")
    items = as_list(spec.get("networks"))
    for index, network in indexed_objs(items):
        types = [t for t in NETWORK_TYPES if network.get(t) is not None]
        if len(types) != 1:
            errors.append(required(f"{where}[{index}]", "a network is exactly one of pod or multus"))
        multus = network.get("multus")
        if multus is not None and not as_str(as_obj(multus).get("networkName")):
            errors.append(required(f"{where}[{index}].multus.networkName"))
    return {name: items[index] for name, index in first.items()}, errors


def _ports(at: str, interface: Obj, seen: set[str]) -> list[FieldError]:
    errors = []
    for index, port in indexed_objs(interface.get("ports")):
        here = f"{at}.ports[{index}]"
        number = as_int(port.get("port"))
        if not number:
            errors.append(required(f"{here}.port"))
        elif not 0 < number < 65536:
            errors.append(invalid(f"{here}.port", number, "must be between 1 and 65535"))
        protocol = port.get("protocol")
        if protocol not in (None, "") and protocol not in PORT_PROTOCOLS:
            errors.append(not_supported(f"{here}.protocol", protocol, PORT_PROTOCOLS))
        name = as_str(port.get("name"))
        if name:
            if name in seen:
                errors.append(duplicate(f"{here}.name", name, "port names must be unique across interfaces"))
            seen.add(name)
    return errors


def _interface(at: str, interface: Obj, networks: dict[str, Obj], ports: set[str]) -> list[FieldError]:
    errors = []
    name = as_str(interface.get("name"))
    network = networks.get(name or "")
    if name and not INTERFACE_NAME.fullmatch(name):
        errors.append(invalid(f"{at}.name", name, "may only contain letters, digits, '-' and '_'"))
    if name and network is None:
        errors.append(invalid(f"{at}.name", name, "no network of this name in spec.networks"))
    for binding in POD_ONLY_BINDINGS:
        if interface.get(binding) is not None and network is not None and network.get("pod") is None:
            errors.append(invalid(f"{at}.{binding}", interface.get(binding),
                                  f"the {binding} binding only works on the pod network"))
    model = interface.get("model")
    if model not in (None, "") and model not in INTERFACE_MODELS:
        errors.append(not_supported(f"{at}.model", model, INTERFACE_MODELS))
    mac = interface.get("macAddress")
    if mac not in (None, "") and not (isinstance(mac, str) and MAC_ADDRESS.fullmatch(mac)):
        errors.append(invalid(f"{at}.macAddress", mac, "must be a MAC address like 02:00:00:00:00:01"))
    if network is not None and network.get("pod") is not None:
        errors += _ports(at, interface, ports)
    return errors


def check_networks(spec: Obj, base: str) -> list[FieldError]:
    where_interfaces = f"{base}.domain.devices.interfaces"
    where_networks = f"{base}.networks"
    interfaces = dig(spec, "domain", "devices", "interfaces")
    for items, where in ((interfaces, where_interfaces), (spec.get("networks"), where_networks)):
        if len(as_list(items)) > MAX_LIST_LENGTH:
            return [too_many(where, len(items))]
    networks, errors = _networks(spec, where_networks)
    # An interface name is the network it plugs into, so a repeated name means two NICs on one network.
    connected, duplicates = unique_names(interfaces, where_interfaces, "interface")
    errors += duplicates
    ports: set[str] = set()
    for index, interface in indexed_objs(interfaces):
        errors += _interface(f"{where_interfaces}[{index}]", interface, networks, ports)
    for index, network in indexed_objs(spec.get("networks")):
        name = as_str(network.get("name"))
        if name and name not in connected:
            errors.append(required(f"{where_networks}[{index}].name",
                                   f"no interface named {name!r} in {where_interfaces}"))
    pod_interfaces = [name for name in connected if as_obj(networks.get(name)).get("pod") is not None]
    if len(pod_interfaces) > 1:
        errors.append(duplicate(where_interfaces, pod_interfaces, "only one interface may use the pod network"))
    return errors
