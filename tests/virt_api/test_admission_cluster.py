"""The webhooks behind a real API server (the embedded control plane with our CRDs): what
kubectl would see. Defaults land in the stored object, a broken VM is refused with 422
and its causes, and the migration check reads the VMI through the Kubernetes API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from kubevirt_api.groups import GROUP, VERSION
from tests.apiserver.backends import HttpsBackend
from tests.virt_api.test_admission_support import UPSTREAM_EXAMPLES, load
from virt_api.admission import admission_route_defs, paths
from virt_api.admission.lookups import kubernetes_lookups

Obj = dict[str, Any]

# Which operations each path is registered for, as upstream's virt-operator registers them.
MUTATING = [(paths.VMI_MUTATE, "virtualmachineinstances", ["CREATE"]),
            (paths.VM_MUTATE, "virtualmachines", ["CREATE", "UPDATE"]),
            (paths.MIGRATION_MUTATE_CREATE, "virtualmachineinstancemigrations", ["CREATE"])]
VALIDATING = [(paths.VMI_VALIDATE_CREATE, "virtualmachineinstances", ["CREATE"]),
              (paths.VMI_VALIDATE_UPDATE, "virtualmachineinstances", ["UPDATE"]),
              (paths.VM_VALIDATE, "virtualmachines", ["CREATE", "UPDATE"]),
              (paths.REPLICASET_VALIDATE, "virtualmachineinstancereplicasets", ["CREATE", "UPDATE"]),
              (paths.MIGRATION_VALIDATE_CREATE, "virtualmachineinstancemigrations", ["CREATE"]),
              (paths.MIGRATION_VALIDATE_UPDATE, "virtualmachineinstancemigrations", ["UPDATE"])]


def _configuration(kind: str, name: str, hooks: list[tuple[str, str, list[str]]], base: str, bundle: str,
                   namespace: str) -> Obj:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": [{"name": f"{path.strip('/')}.kubevirt.io",
                          "clientConfig": {"url": base + path, "caBundle": bundle},
                          "rules": [{"operations": operations, "apiGroups": [GROUP], "apiVersions": ["v1"],
                                     "resources": [resource]}],
                          "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                          "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                          "timeoutSeconds": 10}
                         for path, resource, operations in hooks]}


@pytest.fixture(scope="module")
def cluster(kubevirt_api: client.ApiClient) -> Iterator[tuple[client.ApiClient, str]]:
    namespace = f"adm-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kubevirt_api).create_namespace({"metadata": {"name": namespace}})

    def routes(app: web.Application) -> None:
        app.add_routes(admission_route_defs(kubernetes_lookups(kubevirt_api), "kubevirt"))

    backend = HttpsBackend(routes, names=("virt-api.kubevirt.svc",))
    base = f"https://127.0.0.1:{backend.port}"
    admission = client.AdmissionregistrationV1Api(kubevirt_api)
    admission.create_mutating_webhook_configuration(
        _configuration("MutatingWebhookConfiguration", "virt-api-mutator", MUTATING, base, backend.ca_bundle,
                       namespace))
    admission.create_validating_webhook_configuration(
        _configuration("ValidatingWebhookConfiguration", "virt-api-validator", VALIDATING, base,
                       backend.ca_bundle, namespace))
    try:
        yield kubevirt_api, namespace
    finally:
        admission.delete_mutating_webhook_configuration("virt-api-mutator")
        admission.delete_validating_webhook_configuration("virt-api-validator")
        backend.close()


def _create(api: client.ApiClient, namespace: str, plural: str, obj: Obj) -> Obj:
    return client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, plural, obj)


def _refusal(api: client.ApiClient, namespace: str, plural: str, obj: Obj) -> Obj:
    with pytest.raises(client.ApiException) as raised:
        _create(api, namespace, plural, obj)
    assert raised.value.status == 422, raised.value.body
    return json.loads(raised.value.body)


def test_a_vmi_is_stored_with_its_defaults(cluster: tuple[client.ApiClient, str]) -> None:
    api, namespace = cluster
    vmi = load(next(p for p in UPSTREAM_EXAMPLES if p.stem == "vmi-sata"))
    created = _create(api, namespace, "virtualmachineinstances", vmi)
    try:
        domain = created["spec"]["domain"]
        assert domain["machine"] == {"type": "q35"}
        assert domain["devices"]["disks"] == [{"name": "containerdisk", "disk": {"bus": "virtio"}}]
        assert domain["devices"]["interfaces"] == [{"name": "default", "masquerade": {}}]
        assert created["spec"]["networks"] == [{"name": "default", "pod": {}}]
        assert domain["memory"] == {"guest": "128Mi"}
        assert created["metadata"]["finalizers"] == ["foregroundDeleteVirtualMachine"]
    finally:
        # No VMI controller runs here to release it.
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "virtualmachineinstances", vmi["metadata"]["name"],
            {"metadata": {"finalizers": []}})


def test_a_broken_vm_is_refused_with_every_cause(cluster: tuple[client.ApiClient, str]) -> None:
    api, namespace = cluster
    vm = load(next(p for p in UPSTREAM_EXAMPLES if p.stem == "vm-cirros"))
    vm["spec"]["runStrategy"] = "Always"                                     # next to running: false
    vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"].append({"name": "ghost", "disk": {}})
    status = _refusal(api, namespace, "virtualmachines", vm)
    assert status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"spec.running", "spec.template.spec.domain.devices.disks[2].name"} <= fields
    assert "Running and RunStrategy are mutually exclusive" in status["message"]


def test_a_migration_needs_an_existing_vmi(cluster: tuple[client.ApiClient, str]) -> None:
    api, namespace = cluster
    migration = load(next(p for p in UPSTREAM_EXAMPLES if p.stem == "migration-job"))
    status = _refusal(api, namespace, "virtualmachineinstancemigrations", migration)
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.vmiName"]
    assert f'the VMI "{namespace}/vmi-migratable" does not exist' in status["message"]
