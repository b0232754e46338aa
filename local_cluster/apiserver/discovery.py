"""Discovery documents: what kubectl and DynamicClient read to find resources."""

from __future__ import annotations

from typing import Any

from local_cluster.apiserver.resources import Registry, ResourceInfo

Obj = dict[str, Any]

KUBERNETES_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0+kubevirt-py",
                      "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                      "goVersion": "python", "compiler": "cpython", "platform": "linux/amd64"}


def version() -> Obj:
    return dict(KUBERNETES_VERSION)


def core_versions(server_address: str) -> Obj:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> Obj:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def group_list(registry: Registry, aggregated: dict[str, list[str]]) -> Obj:
    groups = [_group(name, versions) for name, versions in registry.groups().items() if name]
    groups += [_group(name, versions) for name, versions in aggregated.items() if name not in registry.groups()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> Obj | None:
    versions = registry.groups().get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(registry: Registry, group_name: str, version_name: str) -> Obj | None:
    if not registry.serves_group_version(group_name, version_name):
        return None
    resources: list[Obj] = []
    for info in sorted(registry.resources(group_name, version_name), key=lambda i: i.plural):
        resources.append(_resource(info))
        if info.has_status:
            resources.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": info.namespaced,
                              "kind": info.kind, "verbs": ["get", "patch", "update"]})
        if info.group == "" and info.kind == "Pod":
            # Served by the API server from the pod's kubelet (server.pod_log).
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                              "verbs": ["get"]})
            # kubectl drain evicts only where the server lists this; otherwise it deletes.
            resources.append({"name": "pods/eviction", "singularName": "", "namespaced": True,
                              "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]})
            resources.append({"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding",
                              "verbs": ["create"]})
        if info.scale is not None:
            resources.append({"name": f"{info.plural}/scale", "singularName": "", "namespaced": info.namespaced,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})
    group_version = f"{group_name}/{version_name}" if group_name else version_name
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def _resource(info: ResourceInfo) -> Obj:
    entry: Obj = {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                  "kind": info.kind, "verbs": list(info.verbs)}
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    return entry
