"""deploy/ for a real cluster: the built-in kinds pass kubernetes-validate's strict schemas
for every Kubernetes version we claim, custom resources pass our CRDs' schemas, the
kustomization renders exactly the files the local control plane applies, and the
objects that point at each other agree (Services and pod labels, images and the
local cluster's image mapping)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from local_cluster.apply import manifests
from local_cluster.kubelet.images import COMPONENT_MODULES, component_module
from local_cluster.supervisor import deploy_manifests
from tests.deploy.manifests import (CLAIMED_VERSIONS, DEPLOY, KUSTOMIZATION, REPO, crd_version_schema, crds,
                                    example_documents, is_builtin, kustomization, listed_documents, listed_files,
                                    object_key)
from virt_controller.launcher_pod import LAUNCHER_IMAGE

KUBECTL = shutil.which("kubectl")


def _name(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc['kind']}/{meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta['name']}"


@pytest.mark.parametrize("version", CLAIMED_VERSIONS)
def test_builtin_kinds_pass_strict_schema_validation(version: str) -> None:
    checked = 0
    for doc in listed_documents() + example_documents():
        if not is_builtin(doc):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except SchemaNotFoundError:
            pytest.fail(f"{_name(doc)}: Kubernetes {version} has no {doc['apiVersion']} {doc['kind']}")
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            pytest.fail(f"{_name(doc)} is invalid for Kubernetes {version} at {where}: {error.message}")
        checked += 1
    assert checked > 20


def test_the_claimed_versions_are_bundled_by_kubernetes_validate() -> None:
    from kubernetes_validate.utils import all_versions

    assert set(CLAIMED_VERSIONS) <= set(all_versions())


def _custom_resources() -> list[dict]:
    return [doc for doc in listed_documents() + example_documents() if not is_builtin(doc)]


@pytest.mark.parametrize("doc", _custom_resources(), ids=_name)
def test_custom_resources_pass_the_schema_of_their_crd(doc: dict) -> None:
    group, _, version = doc["apiVersion"].rpartition("/")
    crd = crds().get((group, doc["kind"]))
    assert crd is not None, f"deploy/ installs no CRD for {doc['apiVersion']} {doc['kind']}"
    assert crd["spec"]["scope"] == "Namespaced" or "namespace" not in doc["metadata"]
    schema = crd_version_schema(crd, version)
    assert schema is not None, f"{crd['metadata']['name']} does not serve {version}"
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_crd_schema_check_rejects_what_the_api_server_would() -> None:
    """The conversion keeps the checks that matter: unknown fields where the schema is
    closed, types, and int-or-string quantities as either."""
    example = next(doc for doc in example_documents() if doc["kind"] == "VirtualMachine")
    validator = jsonschema.Draft202012Validator(crd_version_schema(crds()[("kubevirt.io", "VirtualMachine")], "v1"))
    requests = example["spec"]["template"]["spec"]["domain"]["resources"]["requests"]
    for bad in ({**example, "unknownField": 1},
                {**example, "spec": {**example["spec"], "runStrategy": 3}},
                {**example, "spec": {**example["spec"], "template": {
                    **example["spec"]["template"], "spec": {**example["spec"]["template"]["spec"], "domain": {
                        **example["spec"]["template"]["spec"]["domain"], "resources": {
                            "requests": {**requests, "memory": [128]}}}}}}}):
        assert list(validator.iter_errors(bad)), bad
    as_number = {**example, "spec": {**example["spec"], "template": {
        **example["spec"]["template"], "spec": {**example["spec"]["template"]["spec"], "domain": {
            **example["spec"]["template"]["spec"]["domain"], "resources": {"requests": {"memory": 134217728}}}}}}}
    assert not list(validator.iter_errors(as_number))


# --- the kustomization and the local control plane ---------------------------------------

def _locally_applied() -> list[tuple]:
    """What `virtctl local up` applies."""
    return manifests(deploy_manifests())


def test_the_kustomization_lists_what_the_local_cluster_applies() -> None:
    assert {path for path, _ in _locally_applied()} == set(listed_files())


def test_the_kustomization_lists_every_manifest_of_deploy() -> None:
    """deploy/monitoring/ (the prometheus-operator's kinds) and deploy/examples/ (for
    users) are installed separately; everything else is for every cluster."""
    manifests_here = {p for p in [*DEPLOY.glob("*.yaml"), *(DEPLOY / "crds").glob("*.yaml")] if p != KUSTOMIZATION}
    assert manifests_here == set(listed_files())
    for entry in kustomization()["resources"]:
        assert (DEPLOY / entry).is_file(), f"{entry}: the local cluster applies files, not kustomize bases"


def test_the_kustomization_only_lists_files() -> None:
    """Anything kustomize would transform (namespace, labels, patches, images) would make
    `kubectl apply -k` and the local cluster install different objects."""
    spec = kustomization()
    assert set(spec) <= {"apiVersion", "kind", "resources"}
    assert spec["kind"] == "Kustomization"


def test_the_local_cluster_never_applies_the_kustomization_itself() -> None:
    assert all(doc["kind"] != "Kustomization" for _, doc in manifests(deploy_manifests()))
    assert KUSTOMIZATION in set(DEPLOY.iterdir())


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (which has kustomize built in) is not installed")
def test_kubectl_kustomize_renders_the_listed_files_unchanged() -> None:
    result = subprocess.run([KUBECTL, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rendered = {object_key(doc): doc for doc in yaml.safe_load_all(result.stdout) if doc}
    listed = {object_key(doc): doc for doc in listed_documents()}
    assert rendered.keys() == listed.keys()
    changed = [key for key in listed if rendered[key] != listed[key]]
    assert not changed, f"kustomize changed {changed}"
    local = {object_key(doc) for _, doc in _locally_applied()}
    assert local == set(rendered)


# --- objects that refer to each other ----------------------------------------------------

def _workloads() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in listed_documents() if doc["kind"] in ("Deployment", "DaemonSet")}


def test_the_metrics_service_selects_every_component_on_its_metrics_port() -> None:
    service = next(doc for doc in listed_documents()
                   if doc["kind"] == "Service" and doc["metadata"]["name"] == "kubevirt-prometheus-metrics")
    assert service["metadata"]["namespace"] == "kubevirt"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"prometheus.kubevirt.io": "true"}
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [("metrics", 8443, 8443)]
    selected = []
    for name, workload in _workloads().items():
        template = workload["spec"]["template"]
        if template["metadata"]["labels"].get("prometheus.kubevirt.io") == "true":
            selected.append(name)
            ports = {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports") or []}
            assert 8443 in ports, f"{name} declares no port 8443"
    assert sorted(selected) == ["virt-api", "virt-controller", "virt-handler"]


def test_services_and_webhooks_reach_pods_that_exist() -> None:
    workloads = _workloads()
    services = {doc["metadata"]["name"]: doc for doc in listed_documents() if doc["kind"] == "Service"}
    api_pods = workloads["virt-api"]["spec"]["template"]
    assert services["virt-api"]["spec"]["selector"].items() <= api_pods["metadata"]["labels"].items()
    ports = {p["containerPort"] for c in api_pods["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in services["virt-api"]["spec"]["ports"]} <= ports
    for doc in listed_documents():
        refs = [hook["clientConfig"]["service"] for hook in doc.get("webhooks") or []]
        if doc["kind"] == "APIService":
            refs.append(doc["spec"]["service"])
        for ref in refs:
            assert (ref["namespace"], ref["name"]) == ("kubevirt", "virt-api")
            assert ref["port"] in {p["port"] for p in services["virt-api"]["spec"]["ports"]}


def test_workloads_use_the_priority_class_deploy_creates() -> None:
    classes = {doc["metadata"]["name"] for doc in listed_documents() if doc["kind"] == "PriorityClass"}
    for name, workload in _workloads().items():
        assert workload["spec"]["template"]["spec"]["priorityClassName"] in classes, name


def test_the_controller_and_api_run_two_replicas() -> None:
    workloads = _workloads()
    assert workloads["virt-controller"]["spec"]["replicas"] == 2
    assert workloads["virt-api"]["spec"]["replicas"] == 2
    assert workloads["virt-handler"]["kind"] == "DaemonSet"


def _images() -> dict[str, str]:
    """Every image deploy/ names -> where, including the launcher image handed to
    virt-controller through its environment."""
    found = {}
    for name, workload in _workloads().items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            found[container["image"]] = name
            for env in container.get("env") or []:
                if env["name"] == "LAUNCHER_IMAGE":
                    found[env["value"]] = f"{name} LAUNCHER_IMAGE"
    return found


def test_every_image_is_one_the_local_cluster_runs_from_this_checkout() -> None:
    images = _images()
    assert {component_module(ref) for ref in images} == set(COMPONENT_MODULES.values()) - {"virtctl"}
    assert LAUNCHER_IMAGE in images, "virt-controller's default launcher image differs from deploy/'s"
    for ref, where in images.items():
        assert ref.startswith("kubevirt-py/"), f"{where}: {ref}"


def test_the_controller_gets_the_launcher_image_from_its_environment() -> None:
    container = _workloads()["virt-controller"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--launcher-image") + 1] == "$(LAUNCHER_IMAGE)"


def _readme_overlay() -> str:
    section = (REPO / "README.md").read_text().split("## Installing on a real cluster", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return next(block for block in blocks if "kind: Kustomization" in block)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (which has kustomize built in) is not installed")
def test_the_readme_overlay_points_every_image_at_the_registry(tmp_path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    text = _readme_overlay().replace("[../deploy]", f"[{os.path.relpath(DEPLOY, overlay)}]")
    (overlay / "kustomization.yaml").write_text(text)
    result = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    images = []
    for doc in yaml.safe_load_all(result.stdout):
        if doc and doc["kind"] in ("Deployment", "DaemonSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                images.append(container["image"])
                images += [e["value"] for e in container.get("env") or [] if e["name"] == "LAUNCHER_IMAGE"]
    assert len(images) == 4
    assert all(image.startswith("registry.example.com/kubevirt-py/") and image.endswith(":0.1.0") for image in images)


def test_every_object_fits_client_side_apply() -> None:
    """`kubectl apply` keeps each object in its last-applied annotation, at most 256 KiB."""
    for doc in listed_documents():
        assert len(json.dumps(doc, separators=(",", ":"))) < 256 * 1024 - 4096, _name(doc)
