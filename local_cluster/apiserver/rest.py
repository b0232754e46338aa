"""Create, read, update, patch and delete objects with kube-apiserver semantics."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from kube_client.labels import format_label_selector
from kube_client.timestamps import now_text
from local_cluster.apiserver import errors, patch, strategy
from local_cluster.apiserver.admission import Admission
from local_cluster.apiserver.codec import decode, encode, storage_api_version
from local_cluster.apiserver.context import RequestContext
from local_cluster.apiserver.meta import generated_name, later, metadata, name_of, parse_resource_version
from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.apiserver.selectors import FieldSelector, LabelSelector
from local_cluster.apiserver.service_accounts import ServiceAccountAdmission
from local_cluster.storage.interface import Compacted, KeyExists, KeyNotFound, KeyValue, RevisionConflict, Store

Obj = dict[str, Any]
# Called after every stored change: (resource, object after, object before). Used to
# keep in-memory views (served CRDs, webhook configurations, API services) current.
ChangeHook = Callable[[ResourceInfo, Obj | None, Obj | None], Awaitable[None]]

# Like kube-apiserver's guaranteed updates, writes that lost a race are retried until
# this budget runs out rather than a fixed number of times: contention is not an error.
_RETRY_SECONDS = 10.0


async def _attempts() -> AsyncIterator[int]:
    """Attempt numbers until the retry budget is spent, with growing jitter between them
    so that writers that collided do not collide again in lockstep."""
    deadline = time.monotonic() + _RETRY_SECONDS
    attempt = 0
    while attempt == 0 or time.monotonic() < deadline:
        if attempt:
            await asyncio.sleep(random.uniform(0, min(0.002 * attempt, 0.05)))
        yield attempt
        attempt += 1


class Objects:
    def __init__(self, store: Store, admission: Admission,
                 service_accounts: ServiceAccountAdmission | None = None) -> None:
        self.store = store
        self.admission = admission
        self.service_accounts = service_accounts
        self.hooks: list[ChangeHook] = []

    async def _changed(self, info: ResourceInfo, after: Obj | None, before: Obj | None) -> None:
        for hook in self.hooks:
            await hook(info, after, before)

    # --- reads ----------------------------------------------------------------------

    async def _current(self, info: ResourceInfo, namespace: str, name: str) -> tuple[KeyValue, Obj]:
        kv = await self.store.get(info.key(namespace, name))
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        return kv, decode(info, kv)

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        return (await self._current(info, namespace, name))[1]

    async def list(self, info: ResourceInfo, namespace: str, *, labels: LabelSelector | None = None,
                   fields: FieldSelector | None = None, limit: int = 0, continue_token: str = "",
                   resource_version: str = "", resource_version_match: str = "") -> Obj:
        revision, start_after = 0, ""
        if continue_token:
            revision, start_after = _decode_continue(continue_token)
        elif resource_version_match == "Exact":
            revision = parse_resource_version(resource_version)
        items: list[Obj] = []
        last_key = start_after
        while True:
            batch = max(limit - len(items), 50) if limit > 0 else 0
            try:
                kvs, header, more = await self.store.list(info.list_prefix(namespace), revision=revision,
                                                          limit=batch, start_after=last_key)
            except Compacted as error:
                if continue_token:
                    raise errors.expired("The provided continue parameter is too old to display a consistent list "
                                         "result. You can start a new list without the continue parameter.") from None
                raise errors.expired(f"too old resource version: {resource_version} "
                                     f"({error.compact_revision})") from None
            revision = revision or header  # later pages read the same snapshot
            for index, kv in enumerate(kvs):
                last_key = kv.key
                obj = decode(info, kv)
                if _selected(obj, labels, fields):
                    items.append(obj)
                if 0 < limit <= len(items):
                    more = more or index < len(kvs) - 1
                    break
            if not more or 0 < limit <= len(items):
                break
        list_meta: Obj = {"resourceVersion": str(revision)}
        if limit > 0 and more:
            list_meta["continue"] = _encode_continue(revision, last_key)
        return {"kind": f"{info.kind}List", "apiVersion": info.api_version, "metadata": list_meta, "items": items}

    # --- create ---------------------------------------------------------------------

    async def create(self, info: ResourceInfo, namespace: str, body: Any, ctx: RequestContext) -> Obj:
        obj = self._checked_body(info, namespace, body)
        if info.namespaced:
            await self._require_live_namespace(namespace)
        meta = metadata(obj)
        generate = not meta.get("name") and bool(meta.get("generateName"))
        for _ in range(5 if generate else 1):
            if generate:
                meta["name"] = generated_name(meta["generateName"])
            try:
                return await self._create_once(info, namespace, copy.deepcopy(obj), ctx)
            except KeyExists:
                if not generate:
                    raise errors.already_exists(info.plural, info.group, meta.get("name", "")) from None
        raise errors.ApiError(500, "AlreadyExists", f"could not find a free name for generateName "
                                                    f"{meta['generateName']!r} after 5 attempts")

    async def _create_once(self, info: ResourceInfo, namespace: str, obj: Obj, ctx: RequestContext) -> Obj:
        if info.group == "" and info.kind == "PersistentVolumeClaim":
            await self._default_storage_class(obj)
        if info.group == "" and info.kind == "Pod" and self.service_accounts is not None:
            # Built-in admission runs before the webhooks, so they see the pod as it will run.
            await self.service_accounts.admit_pod(namespace, obj)
        obj = await self.admission.mutate("CREATE", info, namespace, obj, None, ctx)
        strategy.prepare_create(info, obj, namespace)
        obj = self._validated(info, obj, ctx)
        await self.admission.validate("CREATE", info, namespace, obj, None, ctx)
        if ctx.dry_run:
            return obj
        revision = await self.store.create(info.key(namespace, name_of(obj)), encode(obj))
        await self._changed(info, obj, None)
        result = copy.deepcopy(obj)
        result["apiVersion"] = info.api_version
        metadata(result)["resourceVersion"] = str(revision)
        return result

    async def _default_storage_class(self, claim: Obj) -> None:
        """A claim that names no class gets the default one (DefaultStorageClass admission)."""
        spec = claim.setdefault("spec", {})
        if spec.get("storageClassName") is not None:
            return
        kvs, _, _ = await self.store.list("/registry/storageclasses/")
        for kv in kvs:
            storage_class = json.loads(kv.value)
            annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
            if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
                spec["storageClassName"] = storage_class["metadata"]["name"]
                return

    def _checked_body(self, info: ResourceInfo, namespace: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, "", info.kind):
            raise errors.bad_request(f"the kind of the provided object ({obj.get('kind')}) does not match the "
                                     f"resource {info.group_resource} ({info.kind})")
        api_version = obj.get("apiVersion")
        if api_version not in (None, "") and api_version != info.api_version and not info.is_custom:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                     f"API version ({info.api_version})")
        obj["kind"] = info.kind
        obj["apiVersion"] = api_version or info.api_version
        meta = metadata(obj)
        if info.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        return obj

    async def _require_live_namespace(self, namespace: str) -> None:
        kv = await self.store.get(f"/registry/namespaces/{namespace}")
        if kv is None:
            raise errors.not_found("namespaces", "", namespace)
        if json.loads(kv.value).get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden("namespaces", "", namespace,
                                   f"unable to create new content in namespace {namespace} because it is being "
                                   f"terminated")

    def _validated(self, info: ResourceInfo, obj: Obj, ctx: RequestContext) -> Obj:
        problems = strategy.validate(info, obj)
        if info.validator is not None:
            admitted = info.validator.admit(obj, strict=ctx.field_validation == "Strict")
            problems += [e for e in admitted.errors if not e.field.startswith("metadata")]
            if ctx.field_validation == "Warn":
                for path in admitted.pruned:
                    ctx.warn(f'unknown field "{path}"')
            obj = admitted.obj
            obj["apiVersion"] = storage_api_version(info)
        if problems:
            raise errors.InvalidError(info.group, info.kind, name_of(obj), problems)
        return obj

    # --- update and patch -------------------------------------------------------------

    async def update(self, info: ResourceInfo, namespace: str, name: str, body: Any, ctx: RequestContext,
                     subresource: str = "") -> Obj:
        obj = self._checked_body(info, namespace, body)
        if name_of(obj) != name:
            raise errors.bad_request(f"the name of the object ({name_of(obj)}) does not match the name on the URL "
                                     f"({name})")
        kv, old = await self._current(info, namespace, name)
        wanted = metadata(obj).get("resourceVersion")
        if not wanted and info.is_custom and not subresource:
            raise errors.InvalidError(info.group, info.kind, name, [errors.FieldError(
                "metadata.resourceVersion", "FieldValueInvalid", "must be specified for an update", 0)])
        if wanted and parse_resource_version(wanted) != kv.mod_revision:
            raise errors.conflict(info.plural, info.group, name)
        try:
            return await self._write_update(info, namespace, kv, old, obj, ctx, subresource)
        except RevisionConflict:
            raise errors.conflict(info.plural, info.group, name) from None

    async def patch(self, info: ResourceInfo, namespace: str, name: str, content_type: str, body: Any,
                    ctx: RequestContext, subresource: str = "") -> Obj:
        async for _ in _attempts():
            kv, old = await self._current(info, namespace, name)
            patched = self._apply_patch(info, old, content_type, body)
            pinned = _pinned_version(content_type, body)
            if pinned and pinned != old["metadata"]["resourceVersion"]:
                raise errors.conflict(info.plural, info.group, name)
            if name_of(patched) != name:
                raise errors.bad_request("a patch may not change metadata.name")
            try:
                return await self._write_update(info, namespace, kv, old, patched, ctx, subresource)
            except RevisionConflict:
                if pinned:
                    raise errors.conflict(info.plural, info.group, name) from None
        raise errors.conflict(info.plural, info.group, name, "too many concurrent writers; try again")

    def _apply_patch(self, info: ResourceInfo, old: Obj, content_type: str, body: Any) -> Obj:
        if content_type == patch.MERGE:
            patched = patch.merge_patch(old, body)
        elif content_type == patch.JSON_PATCH:
            patched = patch.json_patch(old, body)
        elif content_type == patch.STRATEGIC and info.strategic_merge:
            patched = patch.strategic_merge_patch(old, body)
        else:
            raise errors.unsupported_media_type(content_type)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch must leave an object")
        patched["kind"], patched["apiVersion"] = info.kind, info.api_version
        return patched

    async def _write_update(self, info: ResourceInfo, namespace: str, kv: KeyValue, old: Obj, obj: Obj,
                            ctx: RequestContext, subresource: str) -> Obj:
        name = name_of(old)
        obj = await self.admission.mutate("UPDATE", info, namespace, obj, old, ctx, subresource)
        strategy.prepare_update(info, obj, old, subresource)
        obj = self._validated(info, obj, ctx)
        await self.admission.validate("UPDATE", info, namespace, obj, old, ctx, subresource)
        if _same(obj, old):
            return old  # a no-op update does not write, so resourceVersion does not move
        if ctx.dry_run:
            return obj
        meta = metadata(obj)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not _deletion_deferred(info, obj):
            return await self._finish_delete(info, namespace, kv, obj)
        try:
            revision = await self.store.update(info.key(namespace, name), encode(obj), kv.mod_revision)
        except KeyNotFound:
            raise errors.not_found(info.plural, info.group, name) from None
        # RevisionConflict propagates: patch and scale retry on it, update reports a Conflict.
        await self._changed(info, obj, old)
        result = copy.deepcopy(obj)
        result["apiVersion"] = info.api_version
        meta = metadata(result)
        meta["resourceVersion"] = str(revision)
        return result

    # --- delete -----------------------------------------------------------------------

    async def delete(self, info: ResourceInfo, namespace: str, name: str, options: Obj | None,
                     ctx: RequestContext) -> Obj:
        # As kube-apiserver's guaranteed update: a concurrent write makes the delete look
        # again rather than fail; only an explicit precondition can turn it into a Conflict.
        async for _ in _attempts():
            try:
                return await self._delete_once(info, namespace, name, options or {}, ctx)
            except RevisionConflict:
                continue
        raise errors.conflict(info.plural, info.group, name, "too many concurrent writers; try again")

    async def _delete_once(self, info: ResourceInfo, namespace: str, name: str, options: Obj,
                           ctx: RequestContext) -> Obj:
        kv, old = await self._current(info, namespace, name)
        _check_preconditions(info, old, options.get("preconditions") or {})
        await self.admission.validate("DELETE", info, namespace, None, old, ctx)
        obj = copy.deepcopy(old)
        meta = metadata(obj)
        finalizers = list(meta.get("finalizers") or [])
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"propagationPolicy {policy!r} is not supported: use Background, Foreground "
                                     f"or Orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        grace = strategy.graceful_seconds(info, old, options.get("gracePeriodSeconds"))
        is_namespace = info.group == "" and info.kind == "Namespace"
        if not finalizers and grace == 0 and not is_namespace:
            if ctx.dry_run:
                return obj
            return await self._finish_delete(info, namespace, kv, obj)
        if meta.get("deletionTimestamp"):
            current_grace = meta.get("deletionGracePeriodSeconds") or 0
            shorter = info.kind == "Pod" and grace < current_grace
            if not shorter and finalizers == list(meta.get("finalizers") or []):
                return old  # already being deleted: nothing new to record
        meta["deletionTimestamp"] = later(grace) if grace else now_text()
        meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            meta["finalizers"] = finalizers
        if is_namespace:
            obj.setdefault("status", {})["phase"] = "Terminating"
        if ctx.dry_run:
            return obj
        revision = await self.store.update(info.key(namespace, name), encode(obj), kv.mod_revision)
        await self._changed(info, obj, old)
        metadata(obj)["resourceVersion"] = str(revision)
        return obj

    async def _finish_delete(self, info: ResourceInfo, namespace: str, kv: KeyValue, obj: Obj) -> Obj:
        name = name_of(obj)
        try:
            deleted = await self.store.delete(info.key(namespace, name), kv.mod_revision)
        except KeyNotFound:
            raise errors.not_found(info.plural, info.group, name) from None
        await self._changed(info, None, obj)
        result = copy.deepcopy(obj)
        metadata(result)["resourceVersion"] = str(deleted.mod_revision)
        return result

    async def remove(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        """Complete a deferred deletion (a namespace once emptied): drop the object now."""
        async for _ in _attempts():
            kv = await self.store.get(info.key(namespace, name))
            if kv is None:
                return None
            try:
                return await self._finish_delete(info, namespace, kv, decode(info, kv))
            except RevisionConflict:
                continue
            except errors.ApiError as error:
                if error.code == 404:
                    return None
                raise
        raise errors.conflict(info.plural, info.group, name, "too many concurrent writers; try again")

    async def delete_collection(self, info: ResourceInfo, namespace: str, options: Obj | None, ctx: RequestContext,
                                labels: LabelSelector | None = None, fields: FieldSelector | None = None) -> Obj:
        listed = await self.list(info, namespace, labels=labels, fields=fields)
        deleted = []
        for item in listed["items"]:
            try:
                deleted.append(await self.delete(info, item["metadata"].get("namespace", ""), name_of(item), options,
                                                 ctx))
            except errors.ApiError as error:
                if error.code != 404:
                    raise
        return {"kind": f"{info.kind}List", "apiVersion": info.api_version,
                "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"]}, "items": deleted}

    # --- scale subresource --------------------------------------------------------------

    async def get_scale(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        obj = await self.get(info, namespace, name)
        return _scale_of(info, obj)

    async def update_scale(self, info: ResourceInfo, namespace: str, name: str, replicas: Any,
                           ctx: RequestContext, resource_version: str = "") -> Obj:
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.InvalidError("autoscaling", "Scale", name, [errors.FieldError(
                "spec.replicas", "FieldValueInvalid", "must be greater than or equal to 0", replicas)])
        path = _json_path(info.scale["specReplicasPath"])  # type: ignore[index]
        async for _ in _attempts():
            kv, old = await self._current(info, namespace, name)
            if resource_version and parse_resource_version(resource_version) != kv.mod_revision:
                raise errors.conflict(info.plural, info.group, name)
            new = copy.deepcopy(old)
            _set_path(new, path, replicas)
            try:
                updated = await self._write_update(info, namespace, kv, old, new, ctx, "")
                return _scale_of(info, updated)
            except RevisionConflict:
                continue
        raise errors.conflict(info.plural, info.group, name)


def _pinned_version(content_type: str, body: Any) -> str | None:
    """The resourceVersion a patch itself names: then, and only then, a concurrent write is a
    Conflict for the caller instead of a reason to apply the patch again."""
    if content_type == patch.JSON_PATCH and isinstance(body, list):
        for operation in body:
            if isinstance(operation, dict) and operation.get("path") == "/metadata/resourceVersion" \
                    and operation.get("op") in ("add", "replace", "test"):
                return str(operation.get("value"))
        return None
    if isinstance(body, dict):
        version = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body.get("metadata"), dict) \
            else None
        return str(version) if version else None
    return None


def _selected(obj: Obj, labels: LabelSelector | None, fields: FieldSelector | None) -> bool:
    if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels")):
        return False
    return fields is None or fields.matches(obj)


def _same(new: Obj, old: Obj) -> bool:
    strip = ("resourceVersion",)
    a = {**new, "metadata": {k: v for k, v in new.get("metadata", {}).items() if k not in strip}}
    b = {**old, "metadata": {k: v for k, v in old.get("metadata", {}).items() if k not in strip}}
    a.pop("apiVersion", None), b.pop("apiVersion", None)
    return a == b


def _deletion_deferred(info: ResourceInfo, obj: Obj) -> bool:
    """Objects whose deletion someone else completes: a gracefully deleted pod (its kubelet
    confirms with a delete of grace 0) and a namespace (emptied by the namespace controller)."""
    if info.group != "":
        return False
    if info.kind == "Pod":
        return bool((obj.get("metadata") or {}).get("deletionGracePeriodSeconds"))
    return info.kind == "Namespace"


def _check_preconditions(info: ResourceInfo, obj: Obj, preconditions: Obj) -> None:
    meta = obj["metadata"]
    if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
        raise errors.conflict(info.plural, info.group, meta["name"],
                              f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                              f"UID in object meta: {meta.get('uid')}")
    if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get("resourceVersion"):
        raise errors.conflict(info.plural, info.group, meta["name"],
                              f"Precondition failed: ResourceVersion in precondition: "
                              f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                              f"{meta.get('resourceVersion')}")


def _encode_continue(revision: int, key: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": key}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request(f"invalid continue token {token!r}") from None


def _json_path(path: str) -> list[str]:
    return [p for p in path.strip(".").split(".") if p]


def _get_path(obj: Obj, path: list[str]) -> Any:
    node: Any = obj
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _set_path(obj: Obj, path: list[str], value: Any) -> None:
    node = obj
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _scale_of(info: ResourceInfo, obj: Obj) -> Obj:
    scale = info.scale or {}
    meta = obj["metadata"]
    status: Obj = {"replicas": _get_path(obj, _json_path(scale.get("statusReplicasPath", ".status.replicas"))) or 0}
    selector_path = scale.get("labelSelectorPath")
    if selector_path:
        selector = _get_path(obj, _json_path(selector_path))
        if isinstance(selector, dict):
            selector = format_label_selector(selector)  # apps kinds keep it as an object
        if selector:
            status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": _get_path(obj, _json_path(scale.get("specReplicasPath", ".spec.replicas"))) or 0},
        "status": status,
    }
