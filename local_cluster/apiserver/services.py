"""Reach a Service the way the aggregation layer and webhooks do: through a ready pod.

There is no service network on a local machine, so a Service reference resolves to
the address of one ready pod behind it and the target port, with the TLS name the
certificate was issued for (<service>.<namespace>.svc).
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from local_cluster.apiserver.selectors import LabelSelector, Requirement
from local_cluster.storage.interface import KeyValue, Store

Obj = dict[str, Any]


class ServiceUnreachable(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls_name: str

    def url(self, path: str, scheme: str = "https") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"


class ServiceResolver:
    def __init__(self, store: Store) -> None:
        self._store = store
        # Services and pods as last decoded, by key, with the revision they were decoded
        # at: every webhook call resolves its service, which and whose pods rarely change,
        # so only what was written since is decoded again (the store is always read).
        self._decoded: dict[str, tuple[int, Obj]] = {}

    async def resolve(self, namespace: str, name: str, port: int = 443) -> Endpoint:
        key = f"/registry/services/{namespace}/{name}"
        kv = await self._store.get(key)
        if kv is None:
            self._decoded.pop(key, None)
            raise ServiceUnreachable(f'service "{namespace}/{name}" not found')
        service = self._decode(kv)
        spec = service.get("spec") or {}
        service_port = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if service_port is None:
            raise ServiceUnreachable(f'service "{namespace}/{name}" has no port {port}')
        selector = LabelSelector([Requirement(k, "=", (v,)) for k, v in (spec.get("selector") or {}).items()])
        pods = [p for p in await self._pods(namespace) if selector.matches(p["metadata"].get("labels")) and _ready(p)]
        if not pods:
            raise ServiceUnreachable(f'no endpoints available for service "{namespace}/{name}"')
        pod = random.choice(pods)
        target = _target_port(pod, service_port.get("targetPort", port))
        if target is None:
            raise ServiceUnreachable(f'service "{namespace}/{name}": pod {pod["metadata"]["name"]} has no port '
                                     f'{service_port.get("targetPort")!r}')
        return Endpoint(pod["status"]["podIP"], target, f"{name}.{namespace}.svc")

    async def _pods(self, namespace: str) -> list[Obj]:
        prefix = f"/registry/pods/{namespace}/"
        kvs, _, _ = await self._store.list(prefix)
        listed = {kv.key for kv in kvs}
        for key in [k for k in self._decoded if k.startswith(prefix) and k not in listed]:
            del self._decoded[key]  # deleted pods: the cache holds no more than the store does
        return [self._decode(kv) for kv in kvs]

    def _decode(self, kv: KeyValue) -> Obj:
        """The stored object, shared with earlier callers: read it, never change it."""
        known = self._decoded.get(kv.key)
        if known is None or known[0] != kv.mod_revision:
            known = (kv.mod_revision, json.loads(kv.value))
            self._decoded[kv.key] = known
        return known[1]


def _ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP") or (pod.get("metadata") or {}).get(
            "deletionTimestamp"):
        return False
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return conditions.get("Ready", "True") == "True"


def _target_port(pod: Obj, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


# A function the admission chain uses to read a namespace's labels for namespaceSelector.
NamespaceLabels = Callable[[str], Awaitable[dict[str, str]]]
