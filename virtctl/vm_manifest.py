"""The VirtualMachine manifest `virtctl create vm` prints, built from its flags.

Volumes come in a fixed order unless a boot order is given: container disks, then PVCs,
then the cloud-init disk. Only volumes with a boot order get an explicit disk; the
others get the default virtio disk when the VMI is defaulted, as upstream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from kubevirt_api.groups import API_VERSION, VIRTUAL_MACHINE
from virtctl.cloud_init import CloudInitRequest, cloud_init_volume
from virtctl.params import boot_order, parse_params

Obj = dict[str, Any]

CONTAINERDISK_FLAG = "volume-containerdisk"
PVC_FLAG = "volume-pvc"
VOLUME_PARAMS = ("name", "src", "bootorder")
INSTANCETYPE_KINDS = ("virtualmachineinstancetype", "virtualmachineclusterinstancetype")
PREFERENCE_KINDS = ("virtualmachinepreference", "virtualmachineclusterpreference")


@dataclass(frozen=True)
class VMRequest:
    name: str
    namespace: str | None = None
    run_strategy: str = "Always"
    termination_grace_period: int = 180
    memory: str | None = "512Mi"
    instancetype: str | None = None
    preference: str | None = None
    containerdisks: tuple[str, ...] = ()
    pvcs: tuple[str, ...] = ()
    cloud_init: CloudInitRequest = field(default_factory=CloudInitRequest)


class _Volumes:
    """Volumes and boot-ordered disks, with upstream's checks on names and boot orders."""

    def __init__(self) -> None:
        self.volumes: list[Obj] = []
        self.disks: list[Obj] = []
        self._orders: set[int] = set()

    def add(self, flag: str, volume: Obj, order: int | None) -> None:
        if any(v["name"] == volume["name"] for v in self.volumes):
            raise click.BadParameter(f'there is already a volume with name "{volume["name"]}"',
                                     param_hint=f"'--{flag}'")
        self.volumes.append(volume)
        if order is None:
            return
        if order in self._orders:
            raise click.BadParameter(f"bootorder {order} was specified multiple times", param_hint=f"'--{flag}'")
        self._orders.add(order)
        self.disks.append({"name": volume["name"], "bootOrder": order})


def _source(flag: str, params: dict[str, str]) -> str:
    if not params.get("src"):
        raise click.BadParameter("src must be specified", param_hint=f"'--{flag}'")
    return params["src"]


def _add_containerdisks(vm_name: str, values: tuple[str, ...], volumes: _Volumes) -> None:
    for index, value in enumerate(values):
        params = parse_params(CONTAINERDISK_FLAG, value, VOLUME_PARAMS)
        image = _source(CONTAINERDISK_FLAG, params)
        name = params.get("name") or f"{vm_name}-containerdisk-{index}"
        volumes.add(CONTAINERDISK_FLAG, {"name": name, "containerDisk": {"image": image}},
                    boot_order(CONTAINERDISK_FLAG, params))


def _add_pvcs(values: tuple[str, ...], volumes: _Volumes) -> None:
    for value in values:
        params = parse_params(PVC_FLAG, value, VOLUME_PARAMS)
        claim = _source(PVC_FLAG, params)
        if "/" in claim:
            # A VM can only use claims of its own namespace.
            raise click.BadParameter(f"not allowed to specify namespace of pvc '{claim.split('/', 1)[1]}'",
                                     param_hint=f"'--{PVC_FLAG}'")
        name = params.get("name") or claim
        volumes.add(PVC_FLAG, {"name": name, "persistentVolumeClaim": {"claimName": claim}},
                    boot_order(PVC_FLAG, params))


def _matcher(flag: str, value: str, kinds: tuple[str, ...]) -> Obj:
    """[kind/]name; without a kind the server's defaulting picks the cluster-wide one."""
    kind, sep, name = value.rpartition("/")
    if not name or (sep and not kind) or "/" in kind:
        raise click.BadParameter(f"invalid value {value!r}, expected [kind/]name", param_hint=f"'--{flag}'")
    kind = kind.lower()
    if kind and kind not in kinds:
        raise click.BadParameter(f'invalid kind "{kind}", supported values are: {", ".join(kinds)}',
                                 param_hint=f"'--{flag}'")
    return {"name": name, **({"kind": kind} if kind else {})}


def build_vm(request: VMRequest) -> Obj:
    volumes = _Volumes()
    _add_containerdisks(request.name, request.containerdisks, volumes)
    _add_pvcs(request.pvcs, volumes)
    cloud_init = cloud_init_volume(request.cloud_init)
    if cloud_init is not None:
        volumes.add("cloud-init", cloud_init, None)
    domain: Obj = {"devices": {"disks": volumes.disks} if volumes.disks else {}}
    if request.memory and not request.instancetype:
        domain["memory"] = {"guest": request.memory}
    vmi_spec: Obj = {"domain": domain, "terminationGracePeriodSeconds": request.termination_grace_period}
    if volumes.volumes:
        vmi_spec["volumes"] = volumes.volumes
    spec: Obj = {"runStrategy": request.run_strategy, "template": {"spec": vmi_spec}}
    if request.instancetype:
        spec["instancetype"] = _matcher("instancetype", request.instancetype, INSTANCETYPE_KINDS)
    if request.preference:
        spec["preference"] = _matcher("preference", request.preference, PREFERENCE_KINDS)
    metadata: Obj = {"name": request.name}
    if request.namespace:
        metadata["namespace"] = request.namespace
    return {"apiVersion": API_VERSION, "kind": VIRTUAL_MACHINE.kind, "metadata": metadata, "spec": spec}
