"""The launcher pod a VMI gets: identity, ownership, placement, resources with overhead, volumes."""

from __future__ import annotations

from pathlib import Path

import yaml

from kube_client.quantity import parse_quantity
from virt_controller.launcher_pod import launcher_pod, memory_overhead_bytes

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream_examples"


def _vmi(name: str) -> dict:
    vmi = yaml.safe_load((EXAMPLES / name).read_text())
    vmi["metadata"].update({"namespace": "default", "uid": "1111-2222"})
    return vmi


def test_identity_ownership_and_placement() -> None:
    vmi = _vmi("vmi-nocloud.yaml")
    vmi["spec"]["nodeSelector"] = {"disk": "ssd"}
    vmi["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    pod = launcher_pod(vmi)
    meta = pod["metadata"]
    assert meta["generateName"] == "virt-launcher-vmi-nocloud-" and meta["namespace"] == "default"
    assert meta["labels"]["kubevirt.io"] == "virt-launcher" and meta["labels"]["kubevirt.io/created-by"] == "1111-2222"
    assert meta["labels"]["special"] == "vmi-nocloud"
    assert meta["annotations"]["kubevirt.io/domain"] == "vmi-nocloud"
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("VirtualMachineInstance", "1111-2222", True)
    assert pod["spec"]["nodeSelector"] == {"disk": "ssd", "kubevirt.io/schedulable": "true"}
    assert pod["spec"]["tolerations"] == vmi["spec"]["tolerations"]
    assert pod["spec"]["terminationGracePeriodSeconds"] == 15
    assert pod["spec"]["restartPolicy"] == "Never"


def test_memory_request_is_guest_plus_overhead() -> None:
    vmi = _vmi("vmi-pvc.yaml")
    pod = launcher_pod(vmi)
    requested = int(parse_quantity(pod["spec"]["containers"][0]["resources"]["requests"]["memory"]))
    assert requested >= 128 * 1024 * 1024 + memory_overhead_bytes(vmi)
    bigger = _vmi("vmi-pvc.yaml")
    bigger["spec"]["domain"]["cpu"]["cores"] = 4
    assert memory_overhead_bytes(bigger) > memory_overhead_bytes(vmi)


def test_claims_are_mounted_per_volume_and_sockets_shared_with_the_handler() -> None:
    pod = launcher_pod(_vmi("vm-alpine-multipvc.yaml")["spec"]["template"] | {
        "metadata": {"name": "multi", "namespace": "default", "uid": "u1"}})
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["vol-pvcdisk1"]["persistentVolumeClaim"]["claimName"] == "disk-alpine"
    assert volumes["sockets"]["hostPath"]["path"] == "/var/run/kubevirt/sockets/u1"  # its own part only
    assert volumes["notify"]["hostPath"]["path"] == "/var/run/kubevirt/sockets/notify"
    mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert "/var/run/kubevirt-private/vmi-disks/pvcdisk2" in mounts
    args = pod["spec"]["containers"][0]["args"]
    assert args[args.index("--cmd-socket") + 1] == "/var/run/kubevirt/sockets/u1/launcher.sock"
