"""CustomResourceDefinitions: validate them, and turn them into served resources."""

from __future__ import annotations

from typing import Any

from kube_client.timestamps import now_text
from kube_schema.crd import CRDValidator
from kube_schema.errors import INVALID, REQUIRED, FieldError
from kube_schema.structural import structural_violations
from local_cluster.apiserver.resources import ResourceInfo

Obj = dict[str, Any]


def crd_errors(crd: Obj) -> list[FieldError]:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [FieldError("spec", REQUIRED)]
    errors: list[FieldError] = []
    group = spec.get("group")
    names = spec.get("names") or {}
    for field in ("plural", "kind"):
        if not names.get(field):
            errors.append(FieldError(f"spec.names.{field}", REQUIRED))
    if not group:
        errors.append(FieldError("spec.group", REQUIRED))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(FieldError("spec.scope", "FieldValueNotSupported", 'supported values: "Cluster", "Namespaced"',
                                 spec.get("scope")))
    name = (crd.get("metadata") or {}).get("name")
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        errors.append(FieldError("metadata.name", INVALID, "must be spec.names.plural+\".\"+spec.group", name))
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        return errors + [FieldError("spec.versions", REQUIRED)]
    storage = [v for v in versions if v.get("storage")]
    if len(storage) != 1:
        errors.append(FieldError("spec.versions", INVALID, "must have exactly one version marked as storage version",
                                 len(storage)))
    for index, version in enumerate(versions):
        schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
        where = f"spec.versions[{index}].schema.openAPIV3Schema"
        if not isinstance(schema, dict):
            errors.append(FieldError(where, REQUIRED))
            continue
        errors += [FieldError(where, INVALID, problem) for problem in structural_violations(schema)]
    return errors


def served_resources(crd: Obj) -> list[ResourceInfo]:
    spec = crd["spec"]
    names = spec["names"]
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    validator = CRDValidator(crd)
    infos = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        infos.append(ResourceInfo(
            group=spec["group"], version=version["name"], kind=names["kind"], plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(), namespaced=spec["scope"] == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            has_status="status" in subresources, scale=subresources.get("scale"),
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            validator=validator, storage_version=storage,
        ))
    return infos


def version_order(crd: Obj) -> list[str]:
    """Served versions, preferred first: the storage version leads, as kubectl expects."""
    versions = [v["name"] for v in crd["spec"]["versions"] if v.get("served", True)]
    storage = next((v["name"] for v in crd["spec"]["versions"] if v.get("storage")), None)
    return sorted(versions, key=lambda v: v != storage)


def established_status(crd: Obj) -> Obj:
    moment = now_text()
    names = dict(crd["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    return {
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": moment},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": moment},
        ],
        "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
    }
