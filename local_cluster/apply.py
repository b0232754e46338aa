"""Apply a directory of manifests the way `kubectl apply -f DIR -R` does: create what is
missing, merge-patch what exists, CRDs first and established before their objects."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException, ResourceNotFoundError

Obj = dict[str, Any]

# Files in deploy/ that are not manifests for the cluster.
_SKIPPED_NAMES = {"kustomization.yaml", "kustomization.yml"}


class ApplyError(RuntimeError):
    pass


def manifests(paths: Iterable[Path]) -> list[tuple[Path, Obj]]:
    found: list[tuple[Path, Obj]] = []
    for root in paths:
        files = sorted(root.rglob("*.yaml")) + sorted(root.rglob("*.yml")) if root.is_dir() else [root]
        for path in files:
            if path.name in _SKIPPED_NAMES:
                continue
            for document in yaml.safe_load_all(path.read_text()):
                if isinstance(document, dict) and document.get("kind") and document.get("apiVersion"):
                    found.append((path, document))
    return found


def apply(api: client.ApiClient, paths: Iterable[Path], *, namespace: str = "default",
          crd_timeout: float = 30.0) -> list[str]:
    """Apply every manifest under ``paths``; returns "kind/name created|configured|unchanged" lines."""
    documents = manifests(paths)
    crds = [(p, d) for p, d in documents if d["kind"] == "CustomResourceDefinition"]
    others = [(p, d) for p, d in documents if d["kind"] != "CustomResourceDefinition"]
    dynamic = DynamicClient(api)
    report = [_apply_one(dynamic, path, doc, namespace) for path, doc in crds]
    if crds:
        _wait_established(api, [d["metadata"]["name"] for _, d in crds], crd_timeout)
        dynamic = DynamicClient(api)  # discovery now knows the new kinds
    report += [_apply_one(dynamic, path, doc, namespace) for path, doc in others]
    return report


def _apply_one(dynamic: DynamicClient, path: Path, document: Obj, namespace: str) -> str:
    try:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
    except ResourceNotFoundError:
        raise ApplyError(f"{path}: the server does not serve {document['apiVersion']} {document['kind']}") from None
    name = document["metadata"]["name"]
    ns = (document["metadata"].get("namespace") or namespace) if resource.namespaced else None
    label = f"{resource.kind.lower()}/{name}"
    try:
        current = resource.get(name=name, namespace=ns)
    except ApiException as error:
        if error.status != 404:
            raise ApplyError(f"{path}: reading {label}: {error.reason}") from None
        try:
            resource.create(body=document, namespace=ns)
        except ApiException as create_error:
            raise ApplyError(f"{path}: creating {label}: {create_error.body}") from None
        return f"{label} created"
    if _contained(document, current.to_dict()):
        return f"{label} unchanged"
    try:
        resource.patch(body=document, name=name, namespace=ns, content_type="application/merge-patch+json")
    except ApiException as error:
        raise ApplyError(f"{path}: updating {label}: {error.body}") from None
    return f"{label} configured"


def _contained(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(_contained(v, actual.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(wanted) == len(actual) and all(
            _contained(w, a) for w, a in zip(wanted, actual))
    return wanted == actual


def _wait_established(api: client.ApiClient, names: list[str], timeout: float) -> None:
    extensions = client.ApiextensionsV1Api(api)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            crd = extensions.read_custom_resource_definition(name)
            if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
                break
            if time.monotonic() > deadline:
                raise ApplyError(f"customresourcedefinition/{name} was not established within {timeout:.0f}s")
            time.sleep(0.1)
