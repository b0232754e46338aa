"""A Service resolves to one of its ready pods, as the store holds them now: what the
resolver remembers between webhook calls never outlives a change in the store."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from local_cluster.apiserver import services
from local_cluster.apiserver.services import Endpoint, ServiceResolver, ServiceUnreachable
from local_cluster.storage.interface import KeyValue

SERVICE_KEY = "/registry/services/kubevirt/virt-api"


class _Entries:
    """The few store reads a resolver makes, over a dict that the test edits between calls."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.revisions: dict[str, int] = {}
        self._revision = 0

    def put(self, key: str, obj: dict[str, Any]) -> None:
        self._revision += 1
        self.values[key] = json.dumps(obj).encode()
        self.revisions[key] = self._revision

    def remove(self, key: str) -> None:
        del self.values[key], self.revisions[key]

    def _kv(self, key: str) -> KeyValue:
        return KeyValue(key, self.values[key], self.revisions[key], self.revisions[key])

    async def get(self, key: str) -> KeyValue | None:
        return self._kv(key) if key in self.values else None

    async def list(self, prefix: str, **_: Any) -> tuple[list[KeyValue], int, bool]:
        return [self._kv(k) for k in sorted(self.values) if k.startswith(prefix)], self._revision, False


def _pod(name: str, ip: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": "virt-api"}},
            "spec": {"containers": [{"name": "api", "ports": [{"name": "https", "containerPort": 8443}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.fixture
def entries() -> _Entries:
    found = _Entries()
    found.put(SERVICE_KEY, {"metadata": {"name": "virt-api"},
                            "spec": {"selector": {"app": "virt-api"}, "ports": [{"port": 443, "targetPort": "https"}]}})
    found.put("/registry/pods/kubevirt/virt-api-a", _pod("virt-api-a", "127.1.0.2"))
    found.put("/registry/pods/kubevirt/handler", {"metadata": {"name": "handler", "labels": {"app": "handler"}},
                                                  "status": {"phase": "Running", "podIP": "127.1.0.3"}})
    return found


def _resolve(resolver: ServiceResolver) -> Endpoint:
    return asyncio.run(resolver.resolve("kubevirt", "virt-api"))


def test_the_endpoint_follows_the_pods_as_they_change(entries: _Entries) -> None:
    resolver = ServiceResolver(entries)  # type: ignore[arg-type]
    assert _resolve(resolver) == Endpoint("127.1.0.2", 8443, "virt-api.kubevirt.svc")
    # The pod is replaced under the same name (a new revision): its new address is used.
    entries.put("/registry/pods/kubevirt/virt-api-a", _pod("virt-api-a", "127.1.0.9"))
    assert _resolve(resolver).host == "127.1.0.9"
    # Not ready any more: no endpoint, whatever was resolved before.
    entries.put("/registry/pods/kubevirt/virt-api-a", _pod("virt-api-a", "127.1.0.9", ready=False))
    with pytest.raises(ServiceUnreachable, match="no endpoints available"):
        _resolve(resolver)
    entries.put("/registry/pods/kubevirt/virt-api-b", _pod("virt-api-b", "127.1.0.4"))
    assert _resolve(resolver).host == "127.1.0.4"


def test_deleted_pods_and_services_are_forgotten(entries: _Entries) -> None:
    resolver = ServiceResolver(entries)  # type: ignore[arg-type]
    _resolve(resolver)
    entries.remove("/registry/pods/kubevirt/virt-api-a")
    with pytest.raises(ServiceUnreachable, match="no endpoints available"):
        _resolve(resolver)
    entries.remove(SERVICE_KEY)
    with pytest.raises(ServiceUnreachable, match="not found"):
        _resolve(resolver)
    assert resolver._decoded == {"/registry/pods/kubevirt/handler": (3, json.loads(
        entries.values["/registry/pods/kubevirt/handler"]))}


def test_an_unchanged_pod_is_decoded_once(entries: _Entries, monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = ServiceResolver(entries)  # type: ignore[arg-type]
    _resolve(resolver)
    decoded: list[bytes] = []
    monkeypatch.setattr(services, "json", SimpleNamespace(loads=lambda raw: decoded.append(raw) or json.loads(raw)))
    for _ in range(3):
        _resolve(resolver)
    assert decoded == []
