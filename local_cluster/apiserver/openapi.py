"""OpenAPI v3 documents, as much as kubectl needs.

kubectl decides between client-side and server-side validation by looking for the
``fieldValidation`` parameter on each kind's PATCH operation in /openapi/v3; when it
is there, kubectl sends fieldValidation=Strict and lets the server judge unknown
fields. CRD schemas are published too, so `kubectl explain` works for our kinds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from local_cluster.apiserver.resources import Registry, ResourceInfo

Obj = dict[str, Any]

_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _document(registry: Registry, group: str, version: str) -> Obj:
    paths: Obj = {}
    schemas: Obj = {}
    for info in registry.resources(group, version):
        base = f"/{_gv_path(group, version)}/" + ("namespaces/{namespace}/" if info.namespaced else "")
        gvk = {"group": group, "version": version, "kind": info.kind}
        schema_name = _schema_name(info)
        schemas[schema_name] = _schema(info)
        item_ops = {verb: _operation(info, gvk, action, schema_name) for verb, action in (
            ("get", "get"), ("put", "put"), ("patch", "patch"), ("delete", "delete"))}
        collection_ops = {verb: _operation(info, gvk, action, schema_name) for verb, action in (
            ("get", "list"), ("post", "post"))}
        paths[f"{base}{info.plural}/{{name}}"] = item_ops
        paths[f"{base}{info.plural}"] = collection_ops
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths,
            "components": {"schemas": schemas}}


def _schema_name(info: ResourceInfo) -> str:
    group = ".".join(reversed(info.group.split("."))) if info.group else "io.k8s.api.core"
    return f"{group}.{info.version}.{info.kind}"


def _schema(info: ResourceInfo) -> Obj:
    gvk = [{"group": info.group, "version": info.version, "kind": info.kind}]
    if info.validator is not None:
        schema = dict(info.validator.schema(info.version))
    else:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema["x-kubernetes-group-version-kind"] = gvk
    return schema


def _operation(info: ResourceInfo, gvk: Obj, action: str, schema_name: str) -> Obj:
    parameters = [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for name in _QUERY_PARAMS]
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    return {"operationId": f"{action}{info.kind}", "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk, "parameters": parameters,
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}}


def discovery(registry: Registry) -> Obj:
    paths = {}
    for group, versions in registry.groups().items():
        for version in versions:
            digest = _hash(_document(registry, group, version))
            paths[_gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}"
                                                                    f"?hash={digest}"}
    return {"paths": paths}


def group_version_document(registry: Registry, gv_path: str) -> Obj | None:
    parts = gv_path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    if not registry.serves_group_version(group, version):
        return None
    return _document(registry, group, version)


def _hash(document: Obj) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()
