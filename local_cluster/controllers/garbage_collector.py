"""Garbage collection by ownerReferences: background, foreground and orphan deletion.

Every write goes through this API server, so the collector keeps its owner graph
current from the store's change hooks instead of watching each resource. It acts
through the normal delete and patch paths, so admission and finalizers apply.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from local_cluster.apiserver import errors
from local_cluster.apiserver.context import RequestContext
from local_cluster.apiserver.patch import JSON_PATCH, MERGE
from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.controllers.base import InProcessController

Obj = dict[str, Any]
log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass(frozen=True)
class Ref:
    group: str
    version: str
    plural: str
    namespace: str
    name: str
    uid: str


class GarbageCollector(InProcessController):
    name = "garbage-collector"

    def __init__(self, apiserver: Any) -> None:
        super().__init__(apiserver)
        self._objects: dict[str, Ref] = {}            # uid -> object
        self._owners: dict[str, list[Obj]] = {}        # uid -> its ownerReferences
        self._dependents: dict[str, set[str]] = {}     # owner uid -> dependent uids
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._ctx = RequestContext(user="system:serviceaccount:kube-system:generic-garbage-collector", internal=True)

    async def start(self) -> None:
        await self._build_graph()
        self._run()
        for uid in list(self._objects):
            self._queue.put_nowait(("check", uid))

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until every queued piece of work is done (for tests and shutdown)."""
        async with asyncio.timeout(timeout):
            await self._queue.join()

    # --- the graph ------------------------------------------------------------------------

    async def _build_graph(self) -> None:
        for info in self._api.registry.storage_resources():
            kvs, _, _ = await self._api.store.list(info.storage_prefix())
            for kv in kvs:
                self._track(info, json.loads(kv.value))

    def _track(self, info: ResourceInfo, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        self._untrack(uid)
        self._objects[uid] = Ref(info.group, info.storage_version or info.version, info.plural,
                                 meta.get("namespace", ""), meta.get("name", ""), uid)
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("uid")]
        self._owners[uid] = owners
        for owner in owners:
            self._dependents.setdefault(owner["uid"], set()).add(uid)

    def _untrack(self, uid: str) -> None:
        self._objects.pop(uid, None)
        for owner in self._owners.pop(uid, []):
            dependents = self._dependents.get(owner["uid"])
            if dependents is not None:
                dependents.discard(uid)
                if not dependents:
                    del self._dependents[owner["uid"]]

    async def _on_change(self, info: ResourceInfo, after: Obj | None, before: Obj | None) -> None:
        if after is None:
            uid = ((before or {}).get("metadata") or {}).get("uid", "")
            self._untrack(uid)
            for dependent in self._dependents.get(uid, set()).copy():
                self._queue.put_nowait(("check", dependent))
            for owner in ((before or {}).get("metadata") or {}).get("ownerReferences") or []:
                self._queue.put_nowait(("check", owner.get("uid", "")))
            return
        self._track(info, after)
        uid = after["metadata"].get("uid", "")
        self._queue.put_nowait(("check", uid))

    # --- the work -----------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            _, uid = await self._queue.get()
            try:
                await self._check(uid)
            except errors.ApiError as error:
                if error.code not in (404, 409):
                    log.warning("garbage collector: %s", error.message)
                elif error.code == 409:
                    self._queue.put_nowait(("check", uid))
            except Exception:  # the collector must outlive any one bad object
                log.exception("garbage collector failed on %s", uid)
            finally:
                self._queue.task_done()

    async def _check(self, uid: str) -> None:
        ref = self._objects.get(uid)
        if ref is None:
            return
        obj = await self._get(ref)
        if obj is None:
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and ORPHAN in finalizers:
            await self._orphan_dependents(uid)
            await self._remove_finalizer(ref, obj, ORPHAN)
            return
        if meta.get("deletionTimestamp") and FOREGROUND in finalizers:
            if await self._delete_dependents(uid, "Foreground"):
                await self._remove_finalizer(ref, obj, FOREGROUND)
            return
        await self._collect_if_orphaned(ref, obj)

    async def _collect_if_orphaned(self, ref: Ref, obj: Obj) -> None:
        owners = self._owners.get(ref.uid) or []
        if not owners:
            return
        alive = [o for o in owners if await self._owner_exists(ref, o)]
        if len(alive) == len(owners):
            return
        if alive:
            await self._drop_owner_refs(ref, obj, {o["uid"] for o in owners if o not in alive})
            return
        await self._delete(ref, "Background")

    async def _owner_exists(self, ref: Ref, owner: Obj) -> bool:
        known = self._objects.get(owner["uid"])
        if known is not None:
            return True
        # Not in the graph: look it up by kind and name, as the owner may have been
        # recreated with a new uid (then this reference is dangling anyway).
        info = self._api.registry.by_kind(owner.get("apiVersion", "").rpartition("/")[0], owner.get("kind", ""))
        if info is None:
            return False
        namespace = ref.namespace if info.namespaced else ""
        kv = await self._api.store.get(info.key(namespace, owner.get("name", "")))
        return kv is not None and json.loads(kv.value).get("metadata", {}).get("uid") == owner["uid"]

    async def _delete_dependents(self, uid: str, policy: str) -> bool:
        """Delete every dependent; True when none is left."""
        remaining = False
        for dependent_uid in self._dependents.get(uid, set()).copy():
            ref = self._objects.get(dependent_uid)
            if ref is None:
                continue
            remaining = True
            obj = await self._get(ref)
            if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                await self._delete(ref, policy)
        return not remaining

    async def _orphan_dependents(self, uid: str) -> None:
        for dependent_uid in self._dependents.get(uid, set()).copy():
            ref = self._objects.get(dependent_uid)
            if ref is not None:
                obj = await self._get(ref)
                if obj is not None:
                    await self._drop_owner_refs(ref, obj, {uid})

    # --- API calls --------------------------------------------------------------------------

    def _info(self, ref: Ref) -> ResourceInfo | None:
        return self._api.registry.get(ref.group, ref.version, ref.plural)

    async def _get(self, ref: Ref) -> Obj | None:
        info = self._info(ref)
        if info is None:
            return None
        try:
            obj = await self._api.objects.get(info, ref.namespace, ref.name)
        except errors.ApiError as error:
            if error.code == 404:
                return None
            raise
        return obj if obj["metadata"].get("uid") == ref.uid else None

    async def _delete(self, ref: Ref, policy: str) -> None:
        info = self._info(ref)
        if info is not None:
            await self._api.objects.delete(info, ref.namespace, ref.name, {
                "propagationPolicy": policy, "preconditions": {"uid": ref.uid}}, self._ctx)

    async def _drop_owner_refs(self, ref: Ref, obj: Obj, owner_uids: set[str]) -> None:
        info = self._info(ref)
        if info is None:
            return
        kept = [o for o in obj["metadata"].get("ownerReferences") or [] if o.get("uid") not in owner_uids]
        await self._api.objects.patch(info, ref.namespace, ref.name, MERGE, {
            "metadata": {"ownerReferences": kept or None, "resourceVersion": obj["metadata"]["resourceVersion"]}},
            self._ctx)

    async def _remove_finalizer(self, ref: Ref, obj: Obj, finalizer: str) -> None:
        info = self._info(ref)
        if info is None:
            return
        finalizers = obj["metadata"].get("finalizers") or []
        index = finalizers.index(finalizer)
        await self._api.objects.patch(info, ref.namespace, ref.name, JSON_PATCH, [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": finalizer},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"}], self._ctx)
