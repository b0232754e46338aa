"""deploy/ as the tests see it: the kustomization's resources, their documents, and the
CRDs' schemas turned into JSON Schema."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZATION = DEPLOY / "kustomization.yaml"

# The Kubernetes minor versions whose schemas the built-in kinds are checked against
# (README: "Installing on a real cluster"). kubernetes-validate bundles each of them.
CLAIMED_VERSIONS = tuple(f"1.{minor}.0" for minor in range(29, 38))


@functools.cache
def _parsed(path: Path) -> tuple[Obj, ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are thousands of lines
    return tuple(d for d in yaml.load_all(path.read_text(), Loader=loader) if isinstance(d, dict))


def documents(path: Path) -> list[Obj]:
    """The objects in a manifest file; shared between tests, so never to be modified."""
    return list(_parsed(path))


def kustomization() -> Obj:
    return yaml.safe_load(KUSTOMIZATION.read_text())


def listed_files() -> list[Path]:
    return [DEPLOY / entry for entry in kustomization()["resources"]]


def listed_documents() -> list[Obj]:
    return [doc for path in listed_files() for doc in documents(path)]


def example_documents() -> list[Obj]:
    return [doc for path in sorted((DEPLOY / "examples").glob("*.yaml")) for doc in documents(path)]


def is_builtin(doc: Obj) -> bool:
    group = doc["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def crds() -> dict[tuple[str, str], Obj]:
    """(group, kind) -> CRD, for every CRD the kustomization installs."""
    found = {}
    for doc in listed_documents():
        if doc["kind"] == "CustomResourceDefinition":
            found[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = doc
    return found


def object_key(doc: Obj) -> tuple[str, str, str, str]:
    meta = doc.get("metadata") or {}
    return doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"]


# --- openAPIV3Schema -> JSON Schema --------------------------------------------------------

_EMBEDDED_FIELDS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"}}


def json_schema(node: Obj) -> Obj:
    """A CRD schema as JSON Schema that rejects what kube-apiserver's strict field
    validation rejects (unknown fields), keeping the Kubernetes extensions' meaning:
    int-or-string takes either, preserve-unknown-fields keeps anything, an embedded
    resource has apiVersion, kind and metadata, nullable admits null."""
    node = copy.deepcopy(node)
    out: Obj = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if out.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    properties = dict(node.get("properties") or {})
    if node.get("x-kubernetes-embedded-resource"):
        properties = {**_EMBEDDED_FIELDS, **properties}
    if properties:
        out["properties"] = {name: json_schema(sub) for name, sub in properties.items()}
    if isinstance(node.get("items"), dict):
        out["items"] = json_schema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = json_schema(node["additionalProperties"])
    elif (out.get("type") == "object" and "additionalProperties" not in node
          and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    for junctor in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(junctor), list):
            out[junctor] = [json_schema(sub) for sub in node[junctor]]
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}] + [
            s for s in out.get("anyOf", []) if s not in ({"type": "integer"}, {"type": "string"})]
    return out


def crd_version_schema(crd: Obj, version: str) -> Obj | None:
    """The JSON Schema of a served version of a CRD, None when the version is not served."""
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version and entry.get("served"):
            schema = json_schema(entry["schema"]["openAPIV3Schema"])
            # kube-apiserver validates metadata itself; the schema's root metadata is a stub.
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            return schema
    return None
