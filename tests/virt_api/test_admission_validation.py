"""The validating webhooks name every offending field: a table of broken manifests, each
refused with 422 and the expected cause (field path and reason)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kube_schema.errors import DUPLICATE, FORBIDDEN, INVALID, NOT_SUPPORTED, REQUIRED, TOO_LONG
from tests.virt_api.test_admission_support import CONTROLLER, Direct, body, causes

Obj = dict[str, Any]


def vmi() -> Obj:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": "testvmi", "namespace": "default"},
            "spec": {"domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}},
                                                      {"name": "cloudinit", "disk": {}}],
                                            "interfaces": [{"name": "default", "masquerade": {}}]},
                                "resources": {"requests": {"memory": "128Mi"}}},
                     "networks": [{"name": "default", "pod": {}}],
                     "volumes": [{"name": "root", "containerDisk": {"image": "kubevirt-py/tiny-guest:latest"}},
                                 {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}]}}


def vm() -> Obj:
    template = vmi()
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "testvm"},
            "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": {"app": "x"}},
                                                           "spec": template["spec"]}}}


def replicaset() -> Obj:
    template = vmi()
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "metadata": {"name": "rs"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}}, "spec": template["spec"]}}}


def migration() -> Obj:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": "mig"}, "spec": {"vmiName": "testvmi"}}


def edit(make: Callable[[], Obj], change: Callable[[Obj], Any]) -> Callable[[], Obj]:
    def build() -> Obj:
        obj = make()
        change(obj)
        return obj
    return build


def spec(obj: Obj) -> Obj:
    return obj["spec"]


def domain(obj: Obj) -> Obj:
    return obj["spec"]["domain"]


def devices(obj: Obj) -> Obj:
    return obj["spec"]["domain"]["devices"]


DISKS = "spec.domain.devices.disks"
IFACES = "spec.domain.devices.interfaces"
CASES = [
    ("disk without volume", edit(vmi, lambda o: devices(o)["disks"].append({"name": "data"})),
     f"{DISKS}[2].name", INVALID),
    ("duplicate disk names", edit(vmi, lambda o: devices(o)["disks"][1].update(name="root")),
     f"{DISKS}[1].name", DUPLICATE),
    ("duplicate volume names", edit(vmi, lambda o: spec(o)["volumes"][1].update(name="root")),
     "spec.volumes[1].name", DUPLICATE),
    ("disk name not a DNS label", edit(vmi, lambda o: (devices(o)["disks"][0].update(name="Root_1"),
                                                       spec(o)["volumes"][0].update(name="Root_1"))),
     f"{DISKS}[0].name", INVALID),
    ("volume with two sources", edit(vmi, lambda o: spec(o)["volumes"][0].update(emptyDisk={"capacity": "1Gi"})),
     "spec.volumes[0]", INVALID),
    ("volume without a source", edit(vmi, lambda o: spec(o)["volumes"][0].pop("containerDisk")),
     "spec.volumes[0]", INVALID),
    ("disk serial with spaces", edit(vmi, lambda o: devices(o)["disks"][0].update(serial="my disk")),
     f"{DISKS}[0].serial", INVALID),
    ("cloud-init without data", edit(vmi, lambda o: spec(o)["volumes"][1].update(cloudInitNoCloud={})),
     "spec.volumes[1].cloudInitNoCloud", REQUIRED),
    ("cloud-init data too long", edit(vmi, lambda o: spec(o)["volumes"][1].update(
        cloudInitNoCloud={"userData": "#" * 3000})), "spec.volumes[1].cloudInitNoCloud.userData", TOO_LONG),
    ("hostDisk without path", edit(vmi, lambda o: spec(o)["volumes"][0].update(
        containerDisk=None, hostDisk={"type": "Disk"})), "spec.volumes[0].hostDisk.path", REQUIRED),
    ("unknown disk bus", edit(vmi, lambda o: devices(o)["disks"][0]["disk"].update(bus="ide")),
     f"{DISKS}[0].disk.bus", NOT_SUPPORTED),
    ("cdrom on virtio", edit(vmi, lambda o: devices(o)["disks"][1].update(disk=None, cdrom={"bus": "virtio"})),
     f"{DISKS}[1].cdrom.bus", INVALID),
    ("two target kinds", edit(vmi, lambda o: devices(o)["disks"][0].update(cdrom={})),
     f"{DISKS}[0]", INVALID),
    ("LUN on a container disk", edit(vmi, lambda o: devices(o)["disks"][0].update(disk=None, lun={})),
     f"{DISKS}[0].lun", INVALID),
    ("interface without network", edit(vmi, lambda o: devices(o)["interfaces"][0].update(name="other")),
     f"{IFACES}[0].name", INVALID),
    ("duplicate interface names", edit(vmi, lambda o: devices(o)["interfaces"].append(
        {"name": "default", "masquerade": {}})), f"{IFACES}[1].name", DUPLICATE),
    ("duplicate network names", edit(vmi, lambda o: spec(o)["networks"].append({"name": "default", "pod": {}})),
     "spec.networks[1].name", DUPLICATE),
    ("network without interface", edit(vmi, lambda o: spec(o)["networks"].append(
        {"name": "extra", "multus": {"networkName": "net"}})), "spec.networks[1].name", REQUIRED),
    ("masquerade off the pod network", edit(vmi, lambda o: spec(o)["networks"][0].update(
        pod=None, multus={"networkName": "net"})), f"{IFACES}[0].masquerade", INVALID),
    ("unsupported NIC model", edit(vmi, lambda o: devices(o)["interfaces"][0].update(model="tulip")),
     f"{IFACES}[0].model", NOT_SUPPORTED),
    ("bad MAC address", edit(vmi, lambda o: devices(o)["interfaces"][0].update(macAddress="02:00:00")),
     f"{IFACES}[0].macAddress", INVALID),
    ("boot order below 1", edit(vmi, lambda o: devices(o)["disks"][0].update(bootOrder=0)),
     f"{DISKS}[0].bootOrder", INVALID),
    ("boot order twice", edit(vmi, lambda o: (devices(o)["disks"][0].update(bootOrder=1),
                                             devices(o)["interfaces"][0].update(bootOrder=1))),
     f"{IFACES}[0].bootOrder", DUPLICATE),
    ("memory request above limit", edit(vmi, lambda o: domain(o)["resources"].update(limits={"memory": "64Mi"})),
     "spec.domain.resources.requests.memory", INVALID),
    ("zero memory", edit(vmi, lambda o: domain(o)["resources"]["requests"].update(memory="0")),
     "spec.domain.resources.requests.memory", INVALID),
    ("negative memory", edit(vmi, lambda o: domain(o)["resources"]["requests"].update(memory="-128Mi")),
     "spec.domain.resources.requests.memory", INVALID),
    ("memory not a quantity", edit(vmi, lambda o: domain(o)["resources"]["requests"].update(memory="lots")),
     "spec.domain.resources.requests.memory", INVALID),
    ("no memory at all", edit(vmi, lambda o: domain(o).pop("resources")),
     "spec.domain.resources.requests.memory", REQUIRED),
    ("guest larger than limit", edit(vmi, lambda o: (domain(o).update(memory={"guest": "1Gi"}),
                                                     domain(o)["resources"].update(limits={"memory": "512Mi"}))),
     "spec.domain.memory.guest", INVALID),
    ("cpu request above limit", edit(vmi, lambda o: domain(o)["resources"].update(
        requests={"memory": "128Mi", "cpu": "2"}, limits={"cpu": "1"})), "spec.domain.resources.requests.cpu", INVALID),
    ("zero cores", edit(vmi, lambda o: domain(o).update(cpu={"cores": 0, "sockets": 2})),
     "spec.domain.cpu.cores", INVALID),
    ("negative threads", edit(vmi, lambda o: domain(o).update(cpu={"threads": -1})),
     "spec.domain.cpu.threads", INVALID),
    ("i440fx machine", edit(vmi, lambda o: domain(o).update(machine={"type": "pc-i440fx-8.0"})),
     "spec.domain.machine.type", INVALID),
    ("unknown start strategy", edit(vmi, lambda o: spec(o).update(startStrategy="Later")),
     "spec.startStrategy", NOT_SUPPORTED),
    ("probe with two handlers", edit(vmi, lambda o: spec(o).update(
        readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 22}})), "spec.readinessProbe", INVALID),
    ("reserved label", edit(vmi, lambda o: o["metadata"].update(labels={"kubevirt.io/nodeName": "node-1"})),
     "metadata.labels", FORBIDDEN),
    ("running and runStrategy", edit(vm, lambda o: spec(o).update(running=True)), "spec.running", INVALID),
    ("unknown runStrategy", edit(vm, lambda o: spec(o).update(runStrategy="Sometimes")),
     "spec.runStrategy", NOT_SUPPORTED),
    ("neither running nor runStrategy", edit(vm, lambda o: spec(o).pop("runStrategy")),
     "spec.runStrategy", REQUIRED),
    ("VM without template", edit(vm, lambda o: spec(o).pop("template")), "spec.template", REQUIRED),
    ("VM template disk without volume", edit(vm, lambda o: spec(o)["template"]["spec"]["volumes"].pop()),
     "spec.template.spec.domain.devices.disks[1].name", INVALID),
    ("unused DataVolume template", edit(vm, lambda o: spec(o).update(dataVolumeTemplates=[
        {"metadata": {"name": "dv"}, "spec": {"pvc": {}}}])), "spec.dataVolumeTemplates[0]", REQUIRED),
    ("selector not matching the template", edit(replicaset, lambda o: spec(o)["selector"].update(
        matchLabels={"app": "y"})), "spec.selector", INVALID),
    ("malformed selector", edit(replicaset, lambda o: spec(o).update(
        selector={"matchExpressions": [{"key": "app", "operator": "Near"}]})), "spec.selector", INVALID),
    ("negative replicas", edit(replicaset, lambda o: spec(o).update(replicas=-1)), "spec.replicas", INVALID),
    ("replica set template duplicate networks", edit(replicaset, lambda o: spec(o)["template"]["spec"][
        "networks"].append({"name": "default", "pod": {}})), "spec.template.spec.networks[1].name", DUPLICATE),
    ("migration without vmiName", edit(migration, lambda o: spec(o).pop("vmiName")), "spec.vmiName", REQUIRED),
]


@pytest.mark.parametrize("make,field,reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_the_offending_field(make: Callable[[], Obj], field: str, reason: str) -> None:
    _, response = Direct().admit(make())
    assert response["allowed"] is False
    status = response["status"]
    assert status["code"] == 422 and status["reason"] == "Invalid"
    found = [(c["field"], c["reason"]) for c in causes(response)]
    assert (field, reason) in found, found
    assert field in status["message"]


@pytest.mark.parametrize("make", [vmi, vm, replicaset], ids=["vmi", "vm", "replicaset"])
def test_the_valid_baselines_are_admitted(make: Callable[[], Obj]) -> None:
    _, response = Direct().admit(make())
    assert response["allowed"], response.get("status")


def test_every_offending_field_is_listed_at_once() -> None:
    broken = vmi()
    devices(broken)["disks"].append({"name": "root"})                 # duplicate disk
    devices(broken)["interfaces"][0]["name"] = "nic"                  # no such network
    domain(broken)["resources"]["limits"] = {"memory": "64Mi"}        # request above limit
    spec(broken)["volumes"][1]["name"] = "root"                       # duplicate volume
    _, response = Direct().admit(broken)
    fields = {c["field"] for c in causes(response)}
    assert {f"{DISKS}[2].name", f"{IFACES}[0].name", "spec.domain.resources.requests.memory",
            "spec.volumes[1].name"} <= fields
    message = response["status"]["message"]
    assert message.startswith('VirtualMachineInstance.kubevirt.io "testvmi" is invalid: [')
    assert all(field in message for field in fields)
    assert all(set(c) == {"reason", "field", "message"} for c in causes(response))


def test_runstrategy_message_is_upstreams() -> None:
    _, response = Direct().admit(edit(vm, lambda o: spec(o).update(running=False))())
    messages = [c["message"] for c in causes(response) if c["field"] == "spec.running"]
    assert messages and "Running and RunStrategy are mutually exclusive" in messages[0]


def test_reserved_labels_are_kubevirts_to_set() -> None:
    labelled = edit(vmi, lambda o: o["metadata"].update(labels={"kubevirt.io/nodeName": "node-1"}))()
    _, response = Direct().admit(labelled, user=CONTROLLER)
    assert response["allowed"], response.get("status")


def test_vmi_spec_is_immutable_for_users_but_not_for_kubevirt() -> None:
    direct = Direct()
    old, _ = direct.admit(vmi())
    new = copy.deepcopy(old)
    new["spec"]["domain"]["resources"]["requests"]["memory"] = "256Mi"
    path = "/virtualmachineinstances-validate-update"
    refused = direct(path, body(new, operation="UPDATE", old=old))
    assert not refused["allowed"] and [c["field"] for c in causes(refused)] == ["spec"]
    assert direct(path, body(new, operation="UPDATE", old=old, user=CONTROLLER))["allowed"]
    admin = {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]}
    assert direct(path, body(new, operation="UPDATE", old=old, user=admin))["allowed"]


def test_vmi_metadata_may_change_but_reserved_labels_may_not() -> None:
    direct = Direct()
    old, _ = direct.admit(vmi())
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"team": "a"}
    path = "/virtualmachineinstances-validate-update"
    assert direct(path, body(new, operation="UPDATE", old=old))["allowed"]
    new["metadata"]["labels"]["kubevirt.io/nodeName"] = "elsewhere"
    refused = direct(path, body(new, operation="UPDATE", old=old))
    assert [(c["field"], c["reason"]) for c in causes(refused)] == [("metadata.labels", FORBIDDEN)]
    assert direct(path, body(new, operation="UPDATE", old=old, user=CONTROLLER))["allowed"]


def test_a_vm_being_deleted_is_not_judged_again() -> None:
    broken = edit(vm, lambda o: (spec(o).update(running=True),
                                 o["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z")))()
    assert Direct()("/virtualmachines-validate", body(broken, operation="UPDATE", old=broken))["allowed"]
