"""CRDs registered at run time: discovery, schema validation, subresources, tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from tests.apiserver.conftest import raw

CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds"
EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream_examples"


@pytest.fixture(scope="module")
def kubevirt_crds(api):
    ext = client.ApiextensionsV1Api(api)
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        try:
            ext.create_custom_resource_definition(crd)
        except client.ApiException as error:
            assert error.status == 409
    return api


def _example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def test_crds_are_established_and_discoverable(kubevirt_crds) -> None:
    crd = client.ApiextensionsV1Api(kubevirt_crds).read_custom_resource_definition(
        "virtualmachineinstances.kubevirt.io")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True" and crd.status.stored_versions == ["v1"]
    dynamic = DynamicClient(kubevirt_crds)
    vmi = dynamic.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachineInstance")
    assert vmi.namespaced and "vmi" in vmi.short_names and vmi.subresources.get("status") is not None
    rs = dynamic.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachineInstanceReplicaSet")
    assert rs.subresources.get("scale") is not None


def test_upstream_example_round_trips(kubevirt_crds, namespace) -> None:
    dynamic = DynamicClient(kubevirt_crds)
    vms = dynamic.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")
    created = vms.create(body=_example("vm-cirros.yaml"), namespace=namespace)
    assert created.metadata.generation == 1
    fetched = vms.get(name="vm-cirros", namespace=namespace)
    assert fetched.spec.template.spec.volumes[1].cloudInitNoCloud.userData.startswith("#!/bin/sh")


def test_schema_violations_are_422_naming_the_field(kubevirt_crds, namespace) -> None:
    vmi = _example("vmi-nocloud.yaml")
    vmi["spec"]["domain"]["devices"]["disks"][0]["disk"]["bus"] = "floppy"
    vmi["spec"]["domain"]["cpu"] = {"cores": "four"}
    status, body = raw(kubevirt_crds, "POST", f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances",
                       vmi)
    assert status == 422 and body["reason"] == "Invalid"
    assert {c["field"] for c in body["details"]["causes"]} == {
        "spec.domain.devices.disks[0].disk.bus", "spec.domain.cpu.cores"}
    assert body["message"].startswith('VirtualMachineInstance.kubevirt.io "vmi-nocloud" is invalid: ')


def test_unknown_fields_warn_or_fail_by_field_validation(kubevirt_crds, namespace) -> None:
    vm = _example("vm-cirros.yaml")
    vm["spec"]["template"]["spec"]["domain"]["resources"]["bogus"] = 1
    path = f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines"
    status, body = raw(kubevirt_crds, "POST", path, vm, query=[("fieldValidation", "Strict")])
    assert status == 422 and body["details"]["causes"][0]["field"] == "spec.template.spec.domain.resources.bogus"
    status, body = raw(kubevirt_crds, "POST", path, vm)
    assert status == 201 and "bogus" not in body["spec"]["template"]["spec"]["domain"]["resources"]


def test_custom_resources_refuse_unconditional_put(kubevirt_crds, namespace) -> None:
    migration = _example("migration-job.yaml")
    path = f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstancemigrations"
    assert raw(kubevirt_crds, "POST", path, migration)[0] == 201
    status, body = raw(kubevirt_crds, "PUT", f"{path}/migration-job", migration)
    assert status == 422 and "metadata.resourceVersion" in body["message"]


def test_status_subresource_and_generation(kubevirt_crds, namespace) -> None:
    path = f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines"
    vm = _example("vm-cirros.yaml")
    vm["status"] = {"printableStatus": "Running"}
    status, created = raw(kubevirt_crds, "POST", path, vm)
    assert status == 201 and "status" not in created  # status is the status subresource's business
    # Writing status does not move generation and ignores spec changes.
    created["status"] = {"printableStatus": "Stopped"}
    created["spec"]["runStrategy"] = "Always"
    created["spec"].pop("running")
    status, after_status = raw(kubevirt_crds, "PUT", f"{path}/vm-cirros/status", created)
    assert status == 200 and after_status["status"] == {"printableStatus": "Stopped"}
    assert after_status["spec"]["running"] is False and after_status["metadata"]["generation"] == 1
    # A spec change through the main resource bumps generation and keeps status.
    status, patched = raw(kubevirt_crds, "PATCH", f"{path}/vm-cirros", {"spec": {"running": True},
                                                                         "status": {"printableStatus": "X"}},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200 and patched["metadata"]["generation"] == 2
    assert patched["status"] == {"printableStatus": "Stopped"}


def test_scale_subresource(kubevirt_crds, namespace) -> None:
    custom = client.CustomObjectsApi(kubevirt_crds)
    custom.create_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachineinstancereplicasets",
                                           _example("vmi-replicaset-cirros.yaml"))
    scale = custom.get_namespaced_custom_object_scale("kubevirt.io", "v1", namespace,
                                                      "virtualmachineinstancereplicasets", "vmi-replicaset-cirros")
    assert scale["spec"]["replicas"] == 3 and scale["kind"] == "Scale"
    custom.patch_namespaced_custom_object_scale("kubevirt.io", "v1", namespace, "virtualmachineinstancereplicasets",
                                                "vmi-replicaset-cirros", {"spec": {"replicas": 5}})
    rs = custom.get_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachineinstancereplicasets",
                                             "vmi-replicaset-cirros")
    assert rs["spec"]["replicas"] == 5
    status, body = raw(kubevirt_crds, "PATCH", f"/apis/kubevirt.io/v1/namespaces/{namespace}/"
                       f"virtualmachineinstancereplicasets/vmi-replicaset-cirros/scale",
                       {"spec": {"replicas": -2}}, headers={"Content-Type": "application/merge-patch+json"})
    assert status == 422


def test_table_output_uses_printer_columns(kubevirt_crds, namespace) -> None:
    client.CustomObjectsApi(kubevirt_crds).create_namespaced_custom_object(
        "kubevirt.io", "v1", namespace, "virtualmachineinstances", _example("vmi-ephemeral.yaml"))
    raw(kubevirt_crds, "PATCH", f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/vmi-ephemeral"
        f"/status", {"status": {"phase": "Running", "nodeName": "node01",
                                "conditions": [{"type": "Ready", "status": "True"}]}},
        headers={"Content-Type": "application/merge-patch+json"})
    status, table = raw(kubevirt_crds, "GET", f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances",
                        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    assert status == 200 and table["kind"] == "Table"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Age", "Phase", "IP", "NodeName", "Ready", "Live-Migratable", "Paused"]
    cells = dict(zip(names, table["rows"][0]["cells"]))
    assert cells["Name"] == "vmi-ephemeral" and cells["Phase"] == "Running" and cells["NodeName"] == "node01"
    assert cells["Ready"] == "True" and cells["Age"].endswith("s")


def test_deleting_a_crd_removes_its_objects(api, namespace) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "minimum": 1}}}}}}}]}}
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(crd)
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("example.com", "v1", namespace, "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}})
    with pytest.raises(client.ApiException) as invalid:
        custom.create_namespaced_custom_object("example.com", "v1", namespace, "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w0"}, "spec": {"size": 0}})
    assert invalid.value.status == 422 and "spec.size" in invalid.value.body
    ext.delete_custom_resource_definition("widgets.example.com")
    status, _ = raw(api, "GET", f"/apis/example.com/v1/namespaces/{namespace}/widgets")
    assert status == 404
    ext.create_custom_resource_definition(crd)  # recreated: the old objects must not come back
    assert custom.list_namespaced_custom_object("example.com", "v1", namespace, "widgets")["items"] == []
    ext.delete_custom_resource_definition("widgets.example.com")


def test_non_structural_crd_is_refused(api) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "gadgets", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {}}}}}]}}
    with pytest.raises(client.ApiException) as error:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    assert error.value.status == 422 and "spec.type: Required value" in error.value.body


def test_table_columns_of_apps_kinds(api, namespace) -> None:
    apps = client.AppsV1Api(api)
    template = {"metadata": {"labels": {"app": "t"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    apps.create_namespaced_deployment(namespace, {"metadata": {"name": "web"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "t"}}, "template": template}})
    status, table = raw(api, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments",
                        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:4] == ["web", "0/3", 0, 0]
