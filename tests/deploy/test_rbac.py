"""Least privilege, checked against the code: every Kubernetes API call and informer in
what each component imports is listed below with the permission it needs, and the
component's Roles and ClusterRoles (deploy/10-rbac.yaml) grant exactly those.

A new call fails the first test until it is audited here (and granted in deploy/); a
grant nothing needs fails the last one. The scan reads the source of every module a
component's entry point imports, so a call is found wherever it lives (kube_client,
pki, kubevirt_api, ...); calls that such a module makes for another component are listed
as not made by this one, with the reason.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import NamedTuple

import kubernetes.client
import pytest

from kube_client.controller.resource import Resource
from tests.deploy.manifests import DEPLOY, REPO, documents

NAMESPACE = "kubevirt"
CLUSTER = "*"  # the scope of a ClusterRole bound by a ClusterRoleBinding


class Need(NamedTuple):
    group: str
    resource: str
    verb: str
    namespace: str = CLUSTER
    name: str = ""  # a resourceNames entry; "" for any


def cluster(group: str, resources: str, verbs: str) -> list[Need]:
    return [Need(group, r, v) for r in resources.split() for v in verbs.split()]


def install_ns(group: str, resource: str, verbs: str, name: str = "") -> list[Need]:
    return [Need(group, resource, v, NAMESPACE, name) for v in verbs.split()]


KV = "kubevirt.io"
VM, VMI, VMIRS, VMIM = ("virtualmachines", "virtualmachineinstances", "virtualmachineinstancereplicasets",
                        "virtualmachineinstancemigrations")
CA_SECRET = install_ns("", "secrets", "create") + install_ns("", "secrets", "get", "kubevirt-py-ca")
# Lease methods live in kube_client.controller, which every component imports for its
# informers; only virt-controller elects a leader.
NO_ELECTION = {"create_namespaced_lease", "read_namespaced_lease", "replace_namespaced_lease"}
# pki.cluster_ca creates the namespace only when the API server says it is missing;
# deploy/00-namespace.yaml creates it first on a real cluster.
NO_NAMESPACE = {"create_namespace"}


class Component(NamedTuple):
    entry: str                        # the module `python -m` runs
    service_account: str
    calls: dict[str, list[Need]]      # generated-client method -> what it needs here
    not_called: set[str]              # methods its imports contain that it never calls
    informers: set[tuple[str, str]]   # (group, plural) it lists and watches


COMPONENTS = {
    "virt-controller": Component(
        "virt_controller.__main__", "kubevirt-controller",
        calls={
            # vm_controller, replicaset_controller create VMIs; migration_evacuation creates migrations.
            "create_namespaced_custom_object": cluster(KV, f"{VMI} {VMIM}", "create"),
            "delete_namespaced_custom_object": cluster(KV, f"{VMI} {VMIM}", "delete"),
            # migration_controller reads the migration's VMI fresh.
            "get_namespaced_custom_object": cluster(KV, VMI, "get"),
            # finalizers and labels of VMIs (vmi_controller) and migrations (migration_controller).
            "patch_namespaced_custom_object": cluster(KV, f"{VMI} {VMIM}", "patch"),
            "patch_namespaced_custom_object_status": cluster(
                KV, f"{VM}/status {VMI}/status {VMIRS}/status {VMIM}/status", "patch"),
            "create_namespaced_pod": cluster("", "pods", "create"),
            "delete_namespaced_pod": cluster("", "pods", "delete"),
            "patch_namespaced_pod": cluster("", "pods", "patch"),     # ownerReferences on migration
            "read_namespaced_persistent_volume_claim": cluster("", "persistentvolumeclaims", "get"),
            "patch_node": cluster("", "nodes", "patch"),
            "create_namespaced_event": cluster("", "events", "create"),
            "patch_namespaced_event": cluster("", "events", "patch"),
            "create_namespaced_lease": install_ns("coordination.k8s.io", "leases", "create"),
            "read_namespaced_lease": install_ns("coordination.k8s.io", "leases", "get", "virt-controller"),
            "replace_namespaced_lease": install_ns("coordination.k8s.io", "leases", "update", "virt-controller"),
            "read_namespaced_secret": CA_SECRET[1:],
            "create_namespaced_secret": CA_SECRET[:1],
            # kubevirt_api.migration_config
            "list_namespaced_custom_object": install_ns(KV, "kubevirts", "list"),
            "read_namespaced_config_map": install_ns("", "configmaps", "get", "kubevirt-config"),
        },
        not_called=NO_NAMESPACE,
        informers={(KV, VM), (KV, VMI), (KV, VMIRS), (KV, VMIM), ("", "pods"), ("", "nodes")},
    ),
    "virt-handler": Component(
        "virt_handler.__main__", "kubevirt-handler",
        calls={
            "patch_namespaced_custom_object_status": cluster(KV, f"{VMI}/status", "patch"),
            "patch_node": cluster("", "nodes", "patch"),            # heartbeat, schedulable, emulation
            "read_namespaced_secret": CA_SECRET[1:],
            "create_namespaced_secret": CA_SECRET[:1],
        },
        not_called=NO_NAMESPACE | NO_ELECTION,
        informers={(KV, VMI)},
    ),
    "virt-api": Component(
        "virt_api.__main__", "kubevirt-apiserver",
        calls={
            "get_namespaced_custom_object": cluster(KV, f"{VM} {VMI}", "get"),
            "patch_namespaced_custom_object": cluster(KV, f"{VM} {VMI}", "patch"),
            "patch_namespaced_custom_object_status": cluster(KV, f"{VM}/status {VMI}/status", "patch"),
            "create_namespaced_custom_object": cluster(KV, VMIM, "create"),     # virtctl migrate
            "list_namespaced_custom_object": cluster(KV, VMIM, "list"),         # migration admission
            "read_namespaced_pod": cluster("", "pods", "get"),                 # launcher eviction
            "list_namespaced_pod": cluster("", "pods", "list"),                # launchers, handlers
            "delete_namespaced_pod": cluster("", "pods", "delete"),            # restart --force
            "read_mutating_webhook_configuration": [
                Need("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get", CLUSTER,
                     "virt-api-mutator")],
            "patch_mutating_webhook_configuration": [
                Need("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch", CLUSTER,
                     "virt-api-mutator")],
            "read_validating_webhook_configuration": [
                Need("admissionregistration.k8s.io", "validatingwebhookconfigurations", "get", CLUSTER,
                     "virt-api-validator")],
            "patch_validating_webhook_configuration": [
                Need("admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch", CLUSTER,
                     "virt-api-validator")],
            "patch_api_service": [
                Need("apiregistration.k8s.io", "apiservices", "patch", CLUSTER, "v1.subresources.kubevirt.io")],
            # virt_api.front_proxy: who may call the subresources.
            "read_namespaced_config_map": [
                Need("", "configmaps", "get", "kube-system", "extension-apiserver-authentication")],
            "read_namespaced_secret": CA_SECRET[1:],
            "create_namespaced_secret": CA_SECRET[:1],
        },
        not_called=NO_NAMESPACE | NO_ELECTION,
        informers=set(),
    ),
}

# Every request method of the generated client, so that a call is recognised by its name
# alone (they are specific: patch_namespaced_custom_object_status, read_namespaced_lease).
_API_METHODS = {
    name for _, cls in inspect.getmembers(kubernetes.client, inspect.isclass)
    if cls.__name__.endswith("Api") and cls.__module__.startswith("kubernetes.client.api")
    for name, _ in inspect.getmembers(cls, inspect.isfunction)
    if name.partition("_")[0] in ("create", "read", "list", "watch", "patch", "replace", "delete", "get", "connect")
    and not name.endswith("_with_http_info")
}
_LOCAL_PACKAGES = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}


def _source(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(entry: str) -> dict[str, ast.Module]:
    """The checkout's modules that entry imports, directly or not, parsed."""
    found: dict[str, ast.Module] = {}
    pending = [entry]
    while pending:
        module = pending.pop()
        path = _source(module)
        if module in found or path is None:
            continue
        found[module] = tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] in _LOCAL_PACKAGES:
                    pending += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return found


def api_methods(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Generated-client method name -> the modules that name it (called or passed to call())."""
    found: dict[str, set[str]] = {}
    for module, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in _API_METHODS:
                found.setdefault(node.attr, set()).add(module)
    return found


def informer_resources(modules: dict[str, ast.Module]) -> set[tuple[str, str]]:
    """(group, plural) of every SharedInformer built from a Resource, read off the module."""
    found = set()
    for module, tree in modules.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    == "SharedInformer" and len(node.args) >= 2):
                continue
            source = eval(compile(ast.Expression(node.args[1]), module, "eval"),  # noqa: S307 - our own source
                          vars(importlib.import_module(module)))
            assert isinstance(source, Resource), f"{module}: informer over {ast.unparse(node.args[1])}"
            found.add((source.group, source.plural))
    return found


def granted(service_account: str) -> set[Need]:
    """Everything deploy/ grants the service account, one Need per (resource, verb, name)."""
    docs = [doc for path in sorted(DEPLOY.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in documents(path)]
    roles = {(doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]): doc
             for doc in docs if doc["kind"] in ("Role", "ClusterRole")}
    needs: set[Need] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if {"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE} not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"]["namespace"] if binding["kind"] == "RoleBinding" else CLUSTER
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else "", ref["name"])]
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], f"wildcard in {ref['name']}"
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames") or [""]:
                            needs.add(Need(group, resource, verb, scope, name))
    return needs


def needed(component: Component) -> set[Need]:
    needs = {need for method_needs in component.calls.values() for need in method_needs}
    needs |= {Need(group, plural, verb) for group, plural in component.informers for verb in ("list", "watch")}
    return needs


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_every_api_call_of_the_component_is_audited(name: str) -> None:
    component = COMPONENTS[name]
    found = api_methods(imported_modules(component.entry))
    unaudited = {m: sorted(mods) for m, mods in found.items()
                 if m not in component.calls and m not in component.not_called}
    assert not unaudited, f"{name} makes API calls tests/deploy/test_rbac.py has not audited: {unaudited}"
    stale = set(component.calls) - set(found)
    assert not stale, f"{name} no longer makes these calls; drop them from the audit and deploy/: {stale}"


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_every_informer_of_the_component_is_audited(name: str) -> None:
    component = COMPONENTS[name]
    assert informer_resources(imported_modules(component.entry)) == component.informers


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_the_component_is_granted_exactly_what_it_needs(name: str) -> None:
    component = COMPONENTS[name]
    have, want = granted(component.service_account), needed(component)
    # Exact, resource names included: a call that reads one named object is granted
    # that object, not its kind.
    assert not want - have, f"{name} lacks: {sorted(want - have)}"
    assert not have - want, f"{name} is granted what it never uses: {sorted(have - want)}"


def test_pods_run_as_the_audited_service_accounts() -> None:
    accounts = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in documents(path):
            if doc["kind"] in ("Deployment", "DaemonSet"):
                accounts[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]["serviceAccountName"]
    assert accounts == {name: c.service_account for name, c in COMPONENTS.items()}


def test_the_user_roles_cover_every_subresource_virt_api_serves() -> None:
    from virt_api.subresources.table import SUBRESOURCES

    roles = {doc["metadata"]["name"]: doc for doc in documents(DEPLOY / "11-rbac-users.yaml")}
    edit = {(resource, verb) for rule in roles["kubevirt.io:edit"]["rules"]
            if "subresources.kubevirt.io" in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}
    assert edit == {(s.discovery_name, s.kube_verb) for s in SUBRESOURCES}
    for name, label in (("kubevirt.io:view", "aggregate-to-view"), ("kubevirt.io:edit", "aggregate-to-edit")):
        assert roles[name]["metadata"]["labels"][f"rbac.authorization.k8s.io/{label}"] == "true"
