"""Our kubevirt.io CRDs: generated, structural, upstream-shaped, and they accept what
upstream accepts and reject bad objects naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_schema import CRDValidator, structural_violations
from kube_schema.errors import INVALID, NOT_SUPPORTED, REQUIRED, UNKNOWN
from kubevirt_api.groups import KINDS
from kubevirt_api.schema.render import rendered
from kubevirt_api.validation import admit

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "deploy" / "crds"
EXAMPLES = sorted((Path(__file__).parent / "fixtures" / "upstream_examples").glob("*.yaml"))


def _deployed() -> dict[str, dict[str, Any]]:
    crds = (yaml.safe_load(p.read_text()) for p in sorted(CRD_DIR.glob("*.yaml")))
    return {crd["spec"]["names"]["kind"]: crd for crd in crds}


DEPLOYED = _deployed()
VALIDATORS = {kind: CRDValidator(crd) for kind, crd in DEPLOYED.items()}


def test_deploy_crds_match_the_schema_modules() -> None:
    on_disk = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert on_disk == rendered(), "deploy/crds/ is stale: run `python -m kubevirt_api.schema`"


def test_one_crd_per_kind() -> None:
    assert set(DEPLOYED) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schemas_are_structural(kind: str) -> None:
    for version in DEPLOYED[kind]["spec"]["versions"]:
        assert structural_violations(version["schema"]["openAPIV3Schema"]) == []


@pytest.mark.parametrize("kind, short, plural", [
    ("VirtualMachine", "vm", "virtualmachines"),
    ("VirtualMachineInstance", "vmi", "virtualmachineinstances"),
    ("VirtualMachineInstanceMigration", "vmim", "virtualmachineinstancemigrations"),
    ("VirtualMachineInstanceReplicaSet", "vmirs", "virtualmachineinstancereplicasets"),
])
def test_names_versions_and_subresources(kind: str, short: str, plural: str) -> None:
    crd = DEPLOYED[kind]
    assert crd["metadata"]["name"] == f"{plural}.kubevirt.io"
    names = crd["spec"]["names"]
    assert short in names["shortNames"] and names["plural"] == plural and names["listKind"] == f"{kind}List"
    assert crd["spec"]["scope"] == "Namespaced"
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert set(versions) == {"v1", "v1alpha3"}
    assert [name for name, v in versions.items() if v["storage"]] == ["v1"]
    for version in versions.values():
        assert version["served"] and "status" in version["subresources"]
        assert ("scale" in version["subresources"]) == (kind == "VirtualMachineInstanceReplicaSet")


def test_replica_set_scale_subresource_paths() -> None:
    scale = DEPLOYED["VirtualMachineInstanceReplicaSet"]["spec"]["versions"][0]["subresources"]["scale"]
    assert scale == {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                     "labelSelectorPath": ".status.labelSelector"}


@pytest.mark.parametrize("kind, columns", [
    ("VirtualMachine", ["Age", "Status", "Ready"]),
    ("VirtualMachineInstance", ["Age", "Phase", "IP", "NodeName", "Ready", "Live-Migratable", "Paused"]),
    ("VirtualMachineInstanceReplicaSet", ["Desired", "Current", "Ready", "Age"]),
    ("VirtualMachineInstanceMigration", ["Phase", "VMI", "Age"]),
])
def test_printer_columns_as_upstream(kind: str, columns: list[str]) -> None:
    version = DEPLOYED[kind]["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_upstream_examples_validate(path: Path) -> None:
    for obj in yaml.safe_load_all(path.read_text()):
        result = VALIDATORS[obj["kind"]].admit(obj, strict=True)
        assert result.errors == [] and result.pruned == []
        assert result.obj == obj


def test_examples_cover_every_kind_and_volume_type() -> None:
    objects = [obj for p in EXAMPLES for obj in yaml.safe_load_all(p.read_text())]
    assert {o["kind"] for o in objects} == set(KINDS)
    volume_types = set()
    for obj in objects:
        spec = obj["spec"].get("template", {}).get("spec", obj["spec"])
        for volume in spec.get("volumes", []):
            volume_types |= set(volume) - {"name"}
    assert {"containerDisk", "persistentVolumeClaim", "emptyDisk", "hostDisk", "cloudInitNoCloud"} <= volume_types


def _vmi(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": "testvmi", "namespace": "default"},
        "spec": {
            "domain": {"devices": {"disks": [{"name": "containerdisk", "disk": {"bus": "virtio"}}]},
                       "resources": {"requests": {"memory": "128Mi"}}},
            "volumes": [{"name": "containerdisk", "containerDisk": {"image": "kubevirt-py/tiny-guest:latest"}}],
        },
    }
    base["spec"].update(spec)
    return base


def _with(obj: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of obj with the field at dotted path (list indexes as numbers) set to value."""
    out = copy.deepcopy(obj)
    parts = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node: Any = out
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


VM = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "testvm"},
      "spec": {"runStrategy": "Always", "template": {"spec": _vmi()["spec"]}}}
VMIRS = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "metadata": {"name": "rs"},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}},
                  "template": {"metadata": {"labels": {"app": "x"}}, "spec": _vmi()["spec"]}}}
VMIM = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration", "metadata": {"name": "mig"},
        "spec": {"vmiName": "testvmi"}}

INVALID_OBJECTS = [
    ("cores as a string", _with(_vmi(), "spec.domain.cpu", {"cores": "two"}), "spec.domain.cpu.cores", INVALID),
    ("negative sockets", _with(_vmi(), "spec.domain.cpu", {"sockets": -1}), "spec.domain.cpu.sockets", INVALID),
    ("unknown disk bus", _with(_vmi(), "spec.domain.devices.disks.0.disk.bus", "ide"),
     "spec.domain.devices.disks[0].disk.bus", NOT_SUPPORTED),
    ("disk without name", _with(_vmi(), "spec.domain.devices.disks", [{"disk": {}}]),
     "spec.domain.devices.disks[0].name", REQUIRED),
    ("bad memory quantity", _with(_vmi(), "spec.domain.resources.requests.memory", "lots"),
     "spec.domain.resources.requests.memory", INVALID),
    ("guest memory as a list", _with(_vmi(), "spec.domain.memory", {"guest": ["1Gi"]}),
     "spec.domain.memory.guest", INVALID),
    ("no domain", _with(_vmi(), "spec", {"volumes": []}), "spec.domain", REQUIRED),
    ("no devices", _with(_vmi(), "spec.domain", {}), "spec.domain.devices", REQUIRED),
    ("containerDisk without image", _with(_vmi(), "spec.volumes.0.containerDisk", {}),
     "spec.volumes[0].containerDisk.image", REQUIRED),
    ("emptyDisk without capacity", _with(_vmi(), "spec.volumes.0", {"name": "e", "emptyDisk": {}}),
     "spec.volumes[0].emptyDisk.capacity", REQUIRED),
    ("hostDisk with unknown type", _with(_vmi(), "spec.volumes.0", {"name": "h", "hostDisk": {
        "path": "/d.img", "type": "Maybe"}}), "spec.volumes[0].hostDisk.type", NOT_SUPPORTED),
    ("PVC without claimName", _with(_vmi(), "spec.volumes.0", {"name": "p", "persistentVolumeClaim": {}}),
     "spec.volumes[0].persistentVolumeClaim.claimName", REQUIRED),
    ("userData not a string", _with(_vmi(), "spec.volumes.0", {"name": "c", "cloudInitNoCloud": {"userData": 5}}),
     "spec.volumes[0].cloudInitNoCloud.userData", INVALID),
    ("negative grace period", _with(_vmi(), "spec.terminationGracePeriodSeconds", -5),
     "spec.terminationGracePeriodSeconds", INVALID),
    ("unknown eviction strategy", _with(_vmi(), "spec.evictionStrategy", "Teleport"), "spec.evictionStrategy",
     NOT_SUPPORTED),
    ("port out of range", _with(_vmi(), "spec.domain.devices.interfaces", [{"name": "default", "masquerade": {},
                                                                            "ports": [{"port": 70000}]}]),
     "spec.domain.devices.interfaces[0].ports[0].port", INVALID),
    ("kernelBoot container without image", _with(_vmi(), "spec.domain.firmware", {"kernelBoot": {"container": {}}}),
     "spec.domain.firmware.kernelBoot.container.image", REQUIRED),
    ("bad phase in status", _with(_vmi(), "status", {"phase": "Sleeping"}), "status.phase", NOT_SUPPORTED),
    ("bad name", _with(_vmi(), "metadata.name", "Not_A_Name"), "metadata.name", INVALID),
    ("no name", _with(_vmi(), "metadata", {}), "metadata.name", REQUIRED),
    ("unknown run strategy", _with(VM, "spec.runStrategy", "Sometimes"), "spec.runStrategy", NOT_SUPPORTED),
    ("running not a bool", _with(VM, "spec.running", "yes"), "spec.running", INVALID),
    ("VM without template", _with(VM, "spec", {"runStrategy": "Always"}), "spec.template", REQUIRED),
    ("VM template bad bus", _with(VM, "spec.template.spec.domain.devices.disks.0.disk.bus", "floppy"),
     "spec.template.spec.domain.devices.disks[0].disk.bus", NOT_SUPPORTED),
    ("negative replicas", _with(VMIRS, "spec.replicas", -1), "spec.replicas", INVALID),
    ("replicas as a string", _with(VMIRS, "spec.replicas", "3"), "spec.replicas", INVALID),
    ("selector operator", _with(VMIRS, "spec.selector", {"matchExpressions": [{"key": "a", "operator": "Near"}]}),
     "spec.selector.matchExpressions[0].operator", NOT_SUPPORTED),
    ("replica set without selector", _with(VMIRS, "spec", {"template": VMIRS["spec"]["template"]}), "spec.selector",
     REQUIRED),
    ("migration without vmiName", _with(VMIM, "spec", {}), "spec.vmiName", REQUIRED),
    ("migration abort status", _with(VMIM, "status", {"migrationState": {"abortStatus": "Maybe"}}),
     "status.migrationState.abortStatus", NOT_SUPPORTED),
]


@pytest.mark.parametrize("obj, field, reason", [case[1:] for case in INVALID_OBJECTS],
                         ids=[case[0] for case in INVALID_OBJECTS])
def test_invalid_objects_are_rejected_naming_the_field(obj: dict[str, Any], field: str, reason: str) -> None:
    errors = VALIDATORS[obj["kind"]].admit(obj).errors
    assert [(e.field, e.reason) for e in errors] == [(field, reason)], [e.message for e in errors]
    assert errors[0].message.startswith(f"{field}: ")


def test_valid_objects_pass() -> None:
    for obj in (_vmi(), VM, VMIRS, VMIM):
        assert admit(obj, strict=True).errors == []


def test_every_error_is_reported_not_just_the_first() -> None:
    obj = _with(_with(_vmi(), "spec.domain.cpu", {"cores": "x", "threads": -1}), "spec.evictionStrategy", "?")
    fields = [e.field for e in admit(obj).errors]
    assert fields == ["spec.domain.cpu.cores", "spec.domain.cpu.threads", "spec.evictionStrategy"]


def test_undeclared_fields_are_pruned_or_refused_in_strict_mode() -> None:
    obj = _with(_vmi(), "spec.domain.resources.bogus", 1)
    obj = _with(obj, "spec.volumes.0.containerDisk.typo", "x")
    lenient = admit(obj)
    assert lenient.errors == []
    assert lenient.pruned == ["spec.domain.resources.bogus", "spec.volumes[0].containerDisk.typo"]
    assert "bogus" not in lenient.obj["spec"]["domain"]["resources"]
    strict = admit(obj, strict=True)
    assert [(e.field, e.reason) for e in strict.errors] == [
        ("spec.domain.resources.bogus", UNKNOWN), ("spec.volumes[0].containerDisk.typo", UNKNOWN)]


def test_upstream_fields_we_do_not_implement_are_kept_for_admission_to_judge() -> None:
    # Pruning an unsupported feature would silently give the user a different VM;
    # keeping it lets virt-api refuse it by name.
    obj = _with(_vmi(), "spec.domain.devices.gpus", [{"name": "gpu1", "deviceName": "nvidia.com/TU104GL"}])
    result = admit(obj, strict=True)
    assert result.errors == [] and result.obj["spec"]["domain"]["devices"]["gpus"][0]["name"] == "gpu1"


def test_v1alpha3_is_served_with_the_same_schema() -> None:
    obj = _with(_vmi(), "apiVersion", "kubevirt.io/v1alpha3")
    assert admit(obj).errors == []
    bad = _with(obj, "spec.domain.cpu", {"cores": "x"})
    assert [e.field for e in admit(bad).errors] == ["spec.domain.cpu.cores"]


@pytest.mark.parametrize("api_version, kind, field", [
    ("kubevirt.io/v2", "VirtualMachineInstance", "apiVersion"),
    ("apps/v1", "VirtualMachineInstance", "apiVersion"),
    ("kubevirt.io/v1", "VirtualMachineInstanceX", "kind"),
    ("kubevirt.io/v1", None, "kind"),
])
def test_wrong_group_version_or_kind(api_version: str, kind: str | None, field: str) -> None:
    obj = {**_vmi(), "apiVersion": api_version, "kind": kind}
    errors = admit(obj).errors
    assert [e.field for e in errors] == [field] and errors[0].reason == NOT_SUPPORTED
