"""What each kind does on create, update and delete, beyond generic storage.

Mirrors kube-apiserver's per-kind strategies for the parts clients can observe:
status is owned by the status subresource, generation counts spec changes, pods
start Pending and are deleted gracefully once bound, services get a cluster IP.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import random
from typing import Any

from kube_client.timestamps import now_text
from kube_schema.errors import INVALID, REQUIRED, FieldError
from kube_schema.objectmeta import label_errors, metadata_errors, path_segment_errors
from local_cluster.apiserver.crds import crd_errors
from local_cluster.apiserver.meta import metadata, new_uid
from local_cluster.apiserver.resources import ResourceInfo

Obj = dict[str, Any]

_SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/12")


def prepare_create(info: ResourceInfo, obj: Obj, namespace: str) -> None:
    meta = metadata(obj)
    for system_field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(system_field, None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_text()
    meta["generation"] = 1
    if info.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if info.has_status and info.is_custom:
        obj.pop("status", None)
    _CREATE_HOOKS.get((info.group, info.kind), lambda o: None)(obj)


def prepare_update(info: ResourceInfo, new: Obj, old: Obj, subresource: str) -> None:
    """Carry over what an update may not change; bump generation on a spec change."""
    old_meta, new_meta = old["metadata"], metadata(new)
    for system_field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                         "namespace", "generation"):
        if system_field in old_meta:
            new_meta[system_field] = old_meta[system_field]
        else:
            new_meta.pop(system_field, None)
    new_meta.pop("resourceVersion", None)
    if subresource == "binding":
        return  # the binding writes spec.nodeName and PodScheduled together, as one update
    if subresource == "status":
        kept = copy.deepcopy(old)
        kept["status"] = new.get("status")
        if kept["status"] is None:
            kept.pop("status")
        new.clear()
        new.update(kept)
        return
    if info.group == "" and info.kind == "Secret":
        fold_string_data(new)
    if info.has_status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if _spec_of(new) != _spec_of(old):
        new_meta["generation"] = int(old_meta.get("generation", 1)) + 1


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def validate(info: ResourceInfo, obj: Obj) -> list[FieldError]:
    errors = metadata_errors(obj.get("metadata"), namespaced=info.namespaced)
    if info.kind == "Namespace" and info.group == "":
        errors = [e for e in errors if e.field != "metadata.name"]
        errors += label_errors("metadata.name", (obj.get("metadata") or {}).get("name") or "x")
    name = (obj.get("metadata") or {}).get("name")
    if info.group == "rbac.authorization.k8s.io" and isinstance(name, str) and name:
        # kube-apiserver names roles and bindings "system:controller:..." and upstream
        # KubeVirt's "kubevirt.io:edit": RBAC names need only be path segments.
        errors = [e for e in errors if e.field != "metadata.name"] + path_segment_errors("metadata.name", name)
    validator = _VALIDATORS.get((info.group, info.kind))
    if validator is not None:
        errors += validator(obj)
    return errors


def graceful_seconds(info: ResourceInfo, obj: Obj, requested: int | None) -> int:
    """Seconds a delete waits for the owner (the kubelet) to finish; 0 deletes now."""
    if info.group != "" or info.kind != "Pod":
        return 0
    spec = obj.get("spec") or {}
    if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0  # nothing runs it: no one to wait for
    if requested is not None:
        return max(requested, 0)
    return int(spec.get("terminationGracePeriodSeconds", 30))


# --- per-kind create defaults -------------------------------------------------------

def _pod_create(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("imagePullPolicy", "IfNotPresent")
        resources = container.get("resources") or {}
        if resources.get("limits"):
            # A limit without a request requests the limit, as API defaulting does.
            requests = resources.setdefault("requests", {})
            for name, quantity in resources["limits"].items():
                requests.setdefault(name, quantity)
    obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: Obj) -> str:
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        set((r.get("limits") or {})) >= {"cpu", "memory"}
        and all((r.get("requests") or {}).get(k, v) == v for k, v in (r.get("limits") or {}).items())
        for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def _namespace_create(obj: Obj) -> None:
    obj["status"] = {"phase": "Active"}
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    metadata(obj).setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")


def _service_create(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None" and not spec.get("clusterIP"):
        # No real service network here: a unique-looking address keeps clients that
        # read it happy; in-cluster calls are resolved to pod IPs (services.py).
        address = _SERVICE_NETWORK[random.randrange(10, _SERVICE_NETWORK.num_addresses - 1)]
        spec["clusterIP"] = str(address)
        spec["clusterIPs"] = [str(address)]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj["status"] = {"loadBalancer": {}}


def _pvc_create(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    obj["status"] = {"phase": "Pending"}


def _pv_create(obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("persistentVolumeReclaimPolicy", "Retain")
    obj["status"] = {"phase": "Pending"}  # the volume binder moves it on


def _secret_create(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    fold_string_data(obj)


def fold_string_data(secret: Obj) -> None:
    """stringData is write-only: merged into data (base64), as kube-apiserver does."""
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict):
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _crd_create(obj: Obj) -> None:
    obj.pop("status", None)


def _deployment_create(obj: Obj) -> None:
    # The defaults apps/v1 gives a Deployment, which kubectl rollout and our controllers read.
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy["type"] = "RollingUpdate"
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")


def _daemonset_create(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy["type"] = "RollingUpdate"
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)


def _replicaset_create(obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)


_CREATE_HOOKS = {
    ("", "Pod"): _pod_create,
    ("", "Namespace"): _namespace_create,
    ("", "Service"): _service_create,
    ("", "PersistentVolumeClaim"): _pvc_create,
    ("", "PersistentVolume"): _pv_create,
    ("", "Secret"): _secret_create,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd_create,
    ("apps", "Deployment"): _deployment_create,
    ("apps", "DaemonSet"): _daemonset_create,
    ("apps", "ReplicaSet"): _replicaset_create,
}


# --- per-kind validation (what our clients rely on) ---------------------------------

def _validate_pod(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError("spec", REQUIRED)]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [FieldError("spec.containers", REQUIRED)]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"spec.containers[{index}]"
        if not isinstance(container, dict):
            errors.append(FieldError(where, INVALID, "must be an object", container))
            continue
        name = container.get("name")
        if not name:
            errors.append(FieldError(f"{where}.name", REQUIRED))
        elif name in seen:
            errors.append(FieldError(f"{where}.name", "FieldValueDuplicate", "", name))
        else:
            errors += label_errors(f"{where}.name", name)
            seen.add(name)
        if not container.get("image"):
            errors.append(FieldError(f"{where}.image", REQUIRED))
    return errors


_VALIDATORS = {
    ("", "Pod"): _validate_pod,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): crd_errors,
}
