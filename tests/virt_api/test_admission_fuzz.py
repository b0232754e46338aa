"""Property: whatever arrives, the webhooks answer without a 5xx and without an internal
error, with a well-formed AdmissionReview (or a 400 Status), and any patch they return
applies to the object they were given.

Inputs: raw bytes, arbitrary JSON, and AdmissionReviews whose envelope and object have
wrong types everywhere, including valid VMs, VMIs, replica sets and migrations with random
fields replaced by garbage, so the checks deep inside the objects are reached too.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.virt_api.test_admission_support import Lookups, Served, apply_patch
from tests.virt_api.test_admission_validation import migration, replicaset, vm, vmi
from virt_api.admission import paths

Obj = dict[str, Any]

# Keys the admission code reads, so random objects hit its branches instead of being ignored.
VOCABULARY = [
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "finalizers", "deletionTimestamp", "spec",
    "status", "phase", "conditions", "type", "reason", "message", "domain", "devices", "disks", "disk", "cdrom",
    "lun", "bus", "bootOrder", "cache", "io", "serial", "interfaces", "masquerade", "slirp", "model", "macAddress",
    "ports", "port", "protocol", "networks", "pod", "multus", "networkName", "volumes", "containerDisk", "image",
    "imagePullPolicy", "persistentVolumeClaim", "claimName", "dataVolume", "cloudInitNoCloud", "userData",
    "userDataBase64", "networkData", "userDataSecretRef", "hostDisk", "path", "capacity", "configMap", "secret",
    "secretName", "serviceAccount", "memoryDump", "emptyDisk", "resources", "requests", "limits", "memory", "cpu",
    "guest", "cores", "sockets", "threads", "machine", "firmware", "bootloader", "efi", "bios", "secureBoot",
    "kernelBoot", "container", "kernelPath", "initrdPath", "kernelArgs", "features", "smm", "enabled",
    "architecture", "startStrategy", "evictionStrategy", "hostname", "subdomain", "readinessProbe", "livenessProbe",
    "httpGet", "tcpSocket", "exec", "timeoutSeconds", "inputs", "autoattachPodInterface", "filesystems", "running",
    "runStrategy", "template", "dataVolumeTemplates", "instancetype", "preference", "inferFromVolume", "replicas",
    "selector", "matchLabels", "matchExpressions", "key", "operator", "values", "vmiName", "uid", "operation",
    "object", "oldObject", "userInfo", "username", "groups", "resource", "request",
]
WORDS = ["", "128Mi", "0", "-1", "1e999999", "NaN", "500m", "virtio", "sata", "cdrom", "q35", "pc-i440fx", "Running",
         "True", "False", "LiveMigratable", "Always", "Halted", "In", "Exists", "default", "kubevirt.io/nodeName",
         "CREATE", "UPDATE", "DELETE", "admission.k8s.io/v1", "AdmissionReview", "/", "/boot/../x", "02:00:00:00:00:01"]

leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS), st.text(max_size=12))
keys = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8))
json_values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(keys, inner, max_size=5)),
                           max_leaves=25)


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    doc[path[0]] = _replace(doc[path[0]], path[1:], value)
    return doc


# Each path with the resource it is registered for and a valid object of that kind.
ROUTES = {
    paths.VMI_MUTATE: ("virtualmachineinstances", vmi), paths.VMI_VALIDATE_CREATE: ("virtualmachineinstances", vmi),
    paths.VMI_VALIDATE_UPDATE: ("virtualmachineinstances", vmi), paths.VM_MUTATE: ("virtualmachines", vm),
    paths.VM_VALIDATE: ("virtualmachines", vm),
    paths.REPLICASET_VALIDATE: ("virtualmachineinstancereplicasets", replicaset),
    paths.MIGRATION_MUTATE_CREATE: ("virtualmachineinstancemigrations", migration),
    paths.MIGRATION_VALIDATE_CREATE: ("virtualmachineinstancemigrations", migration),
    paths.MIGRATION_VALIDATE_UPDATE: ("virtualmachineinstancemigrations", migration),
    paths.LAUNCHER_EVICTION_VALIDATE: ("pods", lambda: {"apiVersion": "policy/v1", "kind": "Eviction",
                                                        "metadata": {"name": "launcher-pod"}}),
}


def _rarely(draw: st.DrawFn) -> bool:
    """True about one time in ten: most cases keep each part well-formed so the next part is
    reached. (Hypothesis favours small and first values, so "rare" is the last choice.)"""
    return draw(st.sampled_from([False] * 9 + [True]))


def corrupted(draw: st.DrawFn, valid: Obj) -> Any:
    """The object with a few fields replaced by garbage, or (rarely) garbage altogether."""
    if _rarely(draw):
        return draw(json_values)
    obj = valid
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        places = [p for p in _paths(obj) if p]
        if not places:
            break
        obj = _replace(obj, draw(st.sampled_from(places)), draw(json_values))
    return obj


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, Any]:
    path = draw(st.sampled_from(paths.ALL))
    resource, make = ROUTES[path]
    if _rarely(draw):
        return path, draw(st.one_of(json_values, st.binary(max_size=64)))
    operation = "UPDATE" if "update" in path else draw(st.sampled_from(["CREATE", "UPDATE", "DELETE"]))
    request = {"uid": "fuzz-uid", "operation": operation, "namespace": "default", "resource": {"resource": resource},
               "userInfo": {"username": "jane", "groups": ["system:authenticated"]},
               "object": corrupted(draw, make()), "oldObject": corrupted(draw, make())}
    if _rarely(draw):  # now the envelope itself
        request[draw(st.sampled_from(sorted(request)))] = draw(json_values)
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    if _rarely(draw):
        review[draw(st.sampled_from(sorted(review)))] = draw(json_values)
    return path, review


def _fake_vmi(namespace: str, name: str) -> Obj | None:
    if str(name).endswith("vmi"):
        return {"metadata": {"name": name, "namespace": namespace}, "spec": {"evictionStrategy": "LiveMigrate"},
                "status": {"phase": "Running", "nodeName": "node01", "conditions": [{"type": "LiveMigratable", "status": "True"}]}}
    return None


def _fake_pod(namespace: str, name: str) -> Obj | None:
    if str(name).endswith("pod"):
        return {"metadata": {"name": name, "namespace": namespace, "labels": {"kubevirt.io": "virt-launcher"},
                             "annotations": {"kubevirt.io/domain": "fuzz-vmi"}},
                "spec": {"nodeName": "node01"}, "status": {"phase": "Running"}}
    return None


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = Served(Lookups(vmi=_fake_vmi, migrations=lambda namespace, name: [], pod=_fake_pod,
                            mark_evacuation=lambda namespace, name, node, dry_run: None))
    yield server
    server.close()


def _check_answer(data: Any, status: int, answer: Any) -> None:
    assert status < 500, answer
    if status == 400:
        assert answer["kind"] == "Status" and answer["code"] == 400 and answer["message"]
        return
    assert status == 200, answer
    request = data["request"]
    response = answer["response"]
    assert answer["kind"] == "AdmissionReview" and response["uid"] == request["uid"]
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        assert response["status"]["code"] != 500, response["status"]  # an internal error is a bug
    if "patch" in response:
        operations = json.loads(base64.b64decode(response["patch"]))
        apply_patch(request["object"], operations)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_no_input_makes_a_webhook_fail(served: Served, case: tuple[str, Any]) -> None:
    path, data = case
    status, answer = served.post(path, data if isinstance(data, bytes) else json.dumps(copy.deepcopy(data)))
    _check_answer(data, status, answer)

