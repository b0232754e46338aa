"""The mutating webhooks write down upstream's defaults as a JSON patch, leave what the
user chose alone, and never touch status."""

from __future__ import annotations

import copy
from typing import Any

from tests.virt_api.test_admission_support import (UPSTREAM_EXAMPLES, Direct, apply_patch, body, load, patch_of)

Obj = dict[str, Any]


def mutate(obj: Obj, *, operation: str = "CREATE", old: Obj | None = None) -> tuple[Obj, list[Obj]]:
    path = {"VirtualMachineInstance": "/virtualmachineinstances-mutate", "VirtualMachine": "/virtualmachines-mutate",
            "VirtualMachineInstanceMigration": "/migration-mutate-create"}[obj["kind"]]
    response = Direct()(path, body(obj, operation=operation, old=old))
    assert response["allowed"] is True
    operations = patch_of(response)
    return apply_patch(obj, operations), operations


def bare_vmi() -> Obj:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": "bare", "namespace": "default"},
            "spec": {"domain": {"devices": {"disks": [{"name": "root"}, {"name": "iso", "cdrom": {}},
                                                      {"name": "shared", "lun": {}}]},
                                "resources": {"limits": {"memory": "256Mi", "cpu": "2500m"}}},
                     "volumes": [{"name": "root", "containerDisk": {"image": "kubevirt-py/tiny-guest:latest"}},
                                 {"name": "iso", "containerDisk": {"image": "example.org/iso@sha256:abcd"}},
                                 {"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}},
                                 {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}]},
            "status": {"phase": "Pending"}}


def test_vmi_defaults() -> None:
    vmi, operations = mutate(bare_vmi())
    spec = vmi["spec"]
    domain = spec["domain"]
    assert domain["machine"] == {"type": "q35"}
    assert spec["architecture"] == "amd64"
    disks = {d["name"]: d for d in domain["devices"]["disks"]}
    assert disks["root"]["disk"] == {"bus": "virtio"}
    assert disks["iso"]["cdrom"] == {"bus": "sata", "readonly": True, "tray": "closed"}
    assert disks["shared"]["lun"] == {"bus": "scsi"}
    # A volume nobody attached becomes a disk of its own.
    assert disks["cloudinit"] == {"name": "cloudinit", "disk": {"bus": "virtio"}}
    assert domain["devices"]["interfaces"] == [{"name": "default", "masquerade": {}}]
    assert spec["networks"] == [{"name": "default", "pod": {}}]
    # Requests follow limits; the guest gets the memory request; sockets from whole CPUs.
    assert domain["resources"]["requests"] == {"memory": "256Mi", "cpu": "2500m"}
    assert domain["memory"] == {"guest": "256Mi"}
    assert domain["cpu"] == {"sockets": 3, "cores": 1, "threads": 1}
    pull = {v["name"]: v.get("containerDisk", {}).get("imagePullPolicy") for v in spec["volumes"]}
    assert pull["root"] == "Always" and pull["iso"] == "IfNotPresent"
    assert vmi["metadata"]["finalizers"] == ["foregroundDeleteVirtualMachine"]
    assert vmi["status"] == {"phase": "Pending"}
    assert not any(op["path"].startswith("/status") for op in operations)


def test_memory_request_follows_the_guest() -> None:
    vmi = bare_vmi()
    vmi["spec"]["domain"]["resources"] = {}
    vmi["spec"]["domain"]["memory"] = {"guest": "512Mi"}
    mutated, _ = mutate(vmi)
    assert mutated["spec"]["domain"]["resources"]["requests"] == {"memory": "512Mi"}
    assert mutated["spec"]["domain"]["cpu"] == {"sockets": 1, "cores": 1, "threads": 1}


def test_what_the_user_chose_is_kept() -> None:
    vmi = bare_vmi()
    domain = vmi["spec"]["domain"]
    domain["machine"] = {"type": "pc-q35-rhel9.2.0"}
    domain["memory"] = {"guest": "200Mi"}
    domain["cpu"] = {"cores": 2}
    domain["devices"]["disks"][0]["disk"] = {"bus": "sata"}
    domain["devices"]["autoattachPodInterface"] = False
    mutated, _ = mutate(vmi)
    domain = mutated["spec"]["domain"]
    assert domain["machine"] == {"type": "pc-q35-rhel9.2.0"}
    assert domain["memory"] == {"guest": "200Mi"}
    assert domain["cpu"] == {"cores": 2}
    assert domain["devices"]["disks"][0]["disk"] == {"bus": "sata"}
    assert "interfaces" not in domain["devices"] and "networks" not in mutated["spec"]


def test_defaults_are_a_fixed_point() -> None:
    for path in UPSTREAM_EXAMPLES:
        obj = load(path)
        if obj["kind"] not in ("VirtualMachineInstance", "VirtualMachine", "VirtualMachineInstanceMigration"):
            continue
        once, _ = mutate(obj)
        twice, operations = mutate(once)
        assert operations == [] and twice == once, path.name


def test_vmi_updates_are_not_mutated() -> None:
    vmi = bare_vmi()
    _, operations = mutate(vmi, operation="UPDATE", old=copy.deepcopy(vmi))
    assert operations == []


def test_vm_defaults_only_what_upstream_does() -> None:
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"},
          "spec": {"instancetype": {"name": "u1.small"}, "preference": {"inferFromVolume": "root"},
                   "template": {"spec": {"domain": {"devices": {}}}}}}
    mutated, _ = mutate(vm)
    spec = mutated["spec"]
    assert spec["template"]["spec"] == {"architecture": "amd64", "domain": {"devices": {}, "machine": {"type": "q35"}}}
    assert spec["instancetype"]["kind"] == "virtualmachineclusterinstancetype"
    assert "kind" not in spec["preference"]
    # runStrategy is the user's to give; upstream refuses a VM without one rather than guess.
    assert "runStrategy" not in spec and "running" not in spec


def test_vm_mutator_runs_on_updates_too() -> None:
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"},
          "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {}}}}}
    mutated, operations = mutate(vm, operation="UPDATE", old=copy.deepcopy(vm))
    assert mutated["spec"]["template"]["spec"]["domain"]["machine"] == {"type": "q35"} and operations


def test_migration_gets_upstreams_label_and_finalizer() -> None:
    migration = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                 "metadata": {"name": "mig", "labels": {"team": "a"}}, "spec": {"vmiName": "testvmi"}}
    mutated, _ = mutate(migration)
    assert mutated["metadata"]["labels"] == {"team": "a", "kubevirt.io/vmi-name": "testvmi"}
    assert mutated["metadata"]["finalizers"] == ["kubevirt.io/migrationJobFinalize"]
    assert mutated["spec"] == {"vmiName": "testvmi"}


def test_ill_typed_fields_are_left_for_the_validator() -> None:
    vmi = bare_vmi()
    vmi["spec"]["domain"]["devices"]["disks"] = "root"
    vmi["spec"]["domain"]["resources"] = ["256Mi"]
    vmi["spec"]["networks"] = {"name": "default"}
    mutated, _ = mutate(vmi)
    assert mutated["spec"]["domain"]["devices"]["disks"] == "root"
    assert mutated["spec"]["domain"]["resources"] == ["256Mi"]
    assert mutated["spec"]["networks"] == {"name": "default"}
