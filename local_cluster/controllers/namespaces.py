"""Namespace deletion: empty a terminating namespace, then remove it."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from local_cluster.apiserver import errors
from local_cluster.apiserver.context import RequestContext
from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.controllers.base import InProcessController

Obj = dict[str, Any]
log = logging.getLogger(__name__)

# Pods being deleted gracefully wait for their kubelet; look again this often.
RETRY_SECONDS = 1.0


class NamespaceController(InProcessController):
    name = "namespace-controller"

    def __init__(self, apiserver: Any) -> None:
        super().__init__(apiserver)
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._ctx = RequestContext(user="system:serviceaccount:kube-system:namespace-controller", internal=True)

    async def start(self) -> None:
        kvs, _, _ = await self._api.store.list("/registry/namespaces/")
        for kv in kvs:
            namespace = json.loads(kv.value)
            if namespace["metadata"].get("deletionTimestamp"):
                self._pending.add(namespace["metadata"]["name"])
        self._run()
        self._wake.set()


    async def _on_change(self, info: ResourceInfo, after: Obj | None, before: Obj | None) -> None:
        if info.group == "" and info.kind == "Namespace" and after is not None \
                and after["metadata"].get("deletionTimestamp"):
            self._pending.add(after["metadata"]["name"])
            self._wake.set()

    async def _work(self) -> None:
        while True:
            try:
                # asyncio.timeout rather than wait_for: on 3.11 wait_for can swallow a
                # cancellation that races with the event, and stop() would hang.
                async with asyncio.timeout(RETRY_SECONDS if self._pending else None):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            for name in sorted(self._pending):
                try:
                    if await self._finish(name):
                        self._pending.discard(name)
                except Exception:  # keep going for the other namespaces
                    log.exception("namespace controller failed on %s", name)

    async def _finish(self, namespace: str) -> bool:
        """Delete what is left in the namespace; True once the namespace itself is gone."""
        empty = True
        for info in self._api.registry.storage_resources():
            if not info.namespaced:
                continue
            kvs, _, _ = await self._api.store.list(info.list_prefix(namespace))
            for kv in kvs:
                empty = False
                obj = json.loads(kv.value)
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self._api.objects.delete(info, namespace, obj["metadata"]["name"],
                                                   {"propagationPolicy": "Background"}, self._ctx)
                except errors.ApiError as error:
                    if error.code not in (404, 409):
                        raise
        if not empty:
            return False
        namespaces = self._api.resource("", "v1", "namespaces")
        await self._api.objects.remove(namespaces, "", namespace)
        return True
