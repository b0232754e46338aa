"""`virtctl create vm` prints a VirtualMachine manifest that our CRD schemas accept."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kubevirt_api.validation import validation_errors
from virtctl.__main__ import main


def create_vm(*args: str) -> Result:
    return CliRunner().invoke(main, ["create", "vm", *args], env={"KUBECONFIG": "/nonexistent", "HOME": "/nonexistent"})


def manifest(*args: str) -> dict[str, Any]:
    result = create_vm(*args)
    assert result.exit_code == 0, result.output
    vm = yaml.safe_load(result.stdout)
    assert validation_errors(vm) == [], validation_errors(vm)
    return vm


def vmi_spec(vm: dict[str, Any]) -> dict[str, Any]:
    return vm["spec"]["template"]["spec"]


def test_defaults_as_upstream() -> None:
    vm = manifest()
    assert vm["apiVersion"] == "kubevirt.io/v1" and vm["kind"] == "VirtualMachine"
    assert re.fullmatch(r"vm-[a-z0-9]{5}", vm["metadata"]["name"])
    assert "namespace" not in vm["metadata"]  # only when -n is given, as upstream
    assert vm["spec"]["runStrategy"] == "Always"
    spec = vmi_spec(vm)
    assert spec["domain"]["memory"] == {"guest": "512Mi"}
    assert spec["terminationGracePeriodSeconds"] == 180
    assert "volumes" not in spec


def test_volumes_in_upstream_order_with_boot_order_disks() -> None:
    vm = manifest("--name=my-vm", "--run-strategy=manual", "--memory=1Gi", "--termination-grace-period=0",
                  "--volume-containerdisk=src:registry:5000/img/fedora:40",
                  "--volume-containerdisk=src:quay.io/x/alpine:3,name:alpine,bootorder:2",
                  "--volume-pvc=src:data,bootorder:1", "--volume-pvc=src:scratch,name:extra")
    assert vm["spec"]["runStrategy"] == "Manual"
    spec = vmi_spec(vm)
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["domain"]["memory"] == {"guest": "1Gi"}
    assert spec["volumes"] == [
        {"name": "my-vm-containerdisk-0", "containerDisk": {"image": "registry:5000/img/fedora:40"}},
        {"name": "alpine", "containerDisk": {"image": "quay.io/x/alpine:3"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "extra", "persistentVolumeClaim": {"claimName": "scratch"}},
    ]
    assert spec["domain"]["devices"]["disks"] == [{"name": "alpine", "bootOrder": 2},
                                                  {"name": "data", "bootOrder": 1}]


def test_namespace_flag_sets_the_namespace() -> None:
    assert manifest("-n", "prod", "--name", "a")["metadata"] == {"name": "a", "namespace": "prod"}
    result = CliRunner().invoke(main, ["-n", "prod", "create", "vm", "--name", "b"], env={"KUBECONFIG": "/none"})
    assert yaml.safe_load(result.stdout)["metadata"]["namespace"] == "prod"


def test_cloud_init_user_data_is_passed_base64() -> None:
    user_data = base64.b64encode(b"#cloud-config\npassword: fedora\n").decode()
    network = base64.b64encode(b"version: 2\n").decode()
    vm = manifest("--volume-containerdisk=src:img", f"--cloud-init-user-data={user_data}",
                  f"--cloud-init-network-data={network}")
    assert vmi_spec(vm)["volumes"][-1] == {"name": "cloudinitdisk", "cloudInitNoCloud": {
        "userDataBase64": user_data, "networkDataBase64": network}}


def test_generated_cloud_config_from_user_ssh_keys_and_password(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret: with colon\n")
    result = create_vm("--user=fedora", "--ssh-key=ssh-ed25519 AAAAC3 me@host", "--ssh-key", "ssh-rsa AAAAB3 other",
                       f"--password-file={password}", "--ga-manage-ssh")
    assert result.exit_code == 0, result.output
    assert "WARNING: --password-file" in result.stderr
    vm = yaml.safe_load(result.stdout)
    assert validation_errors(vm) == []
    user_data = vmi_spec(vm)["volumes"][0]["cloudInitNoCloud"]["userData"]
    assert user_data.startswith("#cloud-config\n")
    assert "userData: |" in result.stdout  # readable as a block, not an escaped one-liner
    assert yaml.safe_load(user_data) == {
        "user": "fedora", "password": "s3cret: with colon", "chpasswd": {"expire": False},
        "ssh_authorized_keys": ["ssh-ed25519 AAAAC3 me@host", "ssh-rsa AAAAB3 other"],
        "runcmd": [["setsebool", "-P", "virt_qemu_ga_manage_ssh", "on"]]}


def test_config_drive_and_none() -> None:
    vm = manifest("--user=cloud", "--cloud-init=ConfigDrive")
    assert vmi_spec(vm)["volumes"] == [{"name": "cloudinitdisk",
                                        "cloudInitConfigDrive": {"userData": "#cloud-config\nuser: cloud"}}]
    result = create_vm("--user=cloud", "--cloud-init=none", "--ssh-key=k")
    assert result.exit_code == 0
    assert "volumes" not in vmi_spec(yaml.safe_load(result.stdout))
    assert "WARNING: --cloud-init" in result.stderr
    # An explicit data source type is honoured even with nothing to put in it.
    assert vmi_spec(manifest("--cloud-init=nocloud"))["volumes"] == [
        {"name": "cloudinitdisk", "cloudInitNoCloud": {"userData": "#cloud-config"}}]


def test_instancetype_and_preference_replace_memory() -> None:
    vm = manifest("--instancetype=u1.medium", "--preference=VirtualMachinePreference/fedora",
                  "--volume-containerdisk=src:img")
    assert vm["spec"]["instancetype"] == {"name": "u1.medium"}
    assert vm["spec"]["preference"] == {"name": "fedora", "kind": "virtualmachinepreference"}
    assert "memory" not in vmi_spec(vm)["domain"]


@pytest.mark.parametrize(("args", "message"), [
    (["--memory=1Gi", "--instancetype=u1.small"], "mutually exclusive"),
    (["--cloud-init-user-data=I2Nsb3VkLWNvbmZpZw==", "--user=x"], "mutually exclusive"),
    (["--cloud-init-user-data=not base64!"], "must be base64 encoded"),
    (["--volume-pvc=src:other-ns/claim"], "not allowed to specify namespace of pvc 'claim'"),
    (["--volume-containerdisk=image:foo"], "unknown param(s): image:foo"),
    (["--volume-containerdisk=name:disk"], "src must be specified"),
    (["--volume-containerdisk=quay.io/img"], "params need to have at least one colon"),
    (["--volume-pvc=src:a", "--volume-pvc=src:a"], 'there is already a volume with name "a"'),
    (["--volume-pvc=src:a,bootorder:1", "--volume-pvc=src:b,bootorder:1"], "bootorder 1 was specified multiple"),
    (["--volume-pvc=src:a,bootorder:0"], "bootorder must be greater than 0"),
    (["--run-strategy=Sometimes"], "Sometimes"),
    (["--memory=lots"], "is not a quantity"),
    (["--name=My_VM"], "RFC 1123"),
    (["--instancetype=pod/x"], 'invalid kind "pod"'),
    (["--password-file=/nonexistent/pw"], "/nonexistent/pw"),
    (["--cloud-init=iso"], "iso"),
    (["unexpected"], "unexpected"),
])
def test_bad_flags_are_usage_errors(args: list[str], message: str) -> None:
    result = create_vm(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output
