"""A controller that keeps one object of its own in every live namespace.

The service account controller (the "default" ServiceAccount) and the root CA publisher
(the kube-root-ca.crt ConfigMap) are both this: on start every namespace is queued; a new
namespace, or a change to or removal of the kept object, queues its namespace again.
"""

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

# A namespace whose object could not be written is tried again after this long.
RETRY_SECONDS = 1.0


class PerNamespaceController(InProcessController):
    # What is kept: set by subclasses.
    group = ""
    plural = ""
    object_name = ""
    user = "system:serviceaccount:kube-system:controller"

    def __init__(self, apiserver: Any) -> None:
        super().__init__(apiserver)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._ctx = RequestContext(user=self.user, internal=True)

    def desired(self, namespace: str) -> Obj:
        """The object to create in ``namespace``."""
        raise NotImplementedError

    def drifted(self, current: Obj) -> Obj | None:
        """The object to write back when ``current`` has drifted from what is kept, else None."""
        return None

    async def start(self) -> None:
        namespaces = self._api.resource("", "v1", "namespaces")
        kvs, _, _ = await self._api.store.list(namespaces.storage_prefix())
        self._run()
        for kv in kvs:
            self._queue.put_nowait(json.loads(kv.value)["metadata"]["name"])

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until every queued namespace is handled (for tests and shutdown)."""
        async with asyncio.timeout(timeout):
            await self._queue.join()

    async def _on_change(self, info: ResourceInfo, after: Obj | None, before: Obj | None) -> None:
        if info.group == "" and info.kind == "Namespace":
            if after is not None and before is None:
                self._queue.put_nowait(after["metadata"]["name"])
            return
        if info.group == self.group and info.plural == self.plural:
            meta = (after or before or {}).get("metadata") or {}
            if meta.get("name") == self.object_name:
                self._queue.put_nowait(meta.get("namespace", ""))

    async def _work(self) -> None:
        while True:
            namespace = await self._queue.get()
            try:
                await self._sync(namespace)
            except Exception as error:  # keep serving the other namespaces; this one comes back
                if isinstance(error, errors.ApiError):
                    log.warning("%s: namespace %s: %s", self.name, namespace, error.message)
                else:
                    log.exception("%s failed on namespace %s", self.name, namespace)
                asyncio.get_running_loop().call_later(RETRY_SECONDS, self._queue.put_nowait, namespace)
            finally:
                self._queue.task_done()

    async def _sync(self, namespace: str) -> None:
        if not await self._namespace_is_live(namespace):
            return  # gone or terminating: the namespace controller is emptying it
        info = self._api.resource(self.group, "v1", self.plural)
        try:
            current = await self._api.objects.get(info, namespace, self.object_name)
        except errors.ApiError as error:
            if error.code != 404:
                raise
            await self._create(info, namespace)
            return
        repaired = self.drifted(current)
        if repaired is not None:
            await self._api.objects.update(info, namespace, self.object_name, repaired, self._ctx)

    async def _create(self, info: ResourceInfo, namespace: str) -> None:
        try:
            await self._api.objects.create(info, namespace, self.desired(namespace), self._ctx)
        except errors.ApiError as error:
            # 409: someone else made it first. 403/404: the namespace went away meanwhile.
            if error.code not in (403, 404, 409):
                raise

    async def _namespace_is_live(self, namespace: str) -> bool:
        namespaces = self._api.resource("", "v1", "namespaces")
        kv = await self._api.store.get(namespaces.key("", namespace))
        return kv is not None and not json.loads(kv.value).get("metadata", {}).get("deletionTimestamp")
