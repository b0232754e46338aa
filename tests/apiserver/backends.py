"""HTTPS servers that stand in for webhook and aggregated API backends in tests."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web
from kubernetes import client

import pki
from pki.server_tls import server_ssl_context


class HttpsBackend:
    """An aiohttp app on 127.0.0.1 with a certificate for ``names``, in its own thread."""

    def __init__(self, routes: Callable[[web.Application], None], names: tuple[str, ...]) -> None:
        self.ca = pki.new_ca("test-backend-ca")
        serving = pki.issue(self.ca, names[0] if names else "backend", dns_names=names, ips=("127.0.0.1",))
        self._ssl = server_ssl_context(serving)  # nothing left on disk
        self.app = web.Application()
        routes(self.app)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> int:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca.cert_pem).decode()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def run_pod_behind_service(core: client.CoreV1Api, namespace: str, name: str, port: int) -> None:
    """A Service named ``name`` whose one ready pod answers on 127.0.0.1:``port``
    (the pod's status is written by hand: no kubelet runs in these tests)."""
    core.create_namespaced_pod(namespace, {"metadata": {"name": f"{name}-0", "labels": {"app": name}}, "spec": {
        "containers": [{"name": "server", "image": "backend", "ports": [{"name": "https", "containerPort": port}]}]}})
    core.patch_namespaced_pod_status(f"{name}-0", namespace, {"status": {
        "phase": "Running", "podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}})
    core.create_namespaced_service(namespace, {"metadata": {"name": name}, "spec": {
        "selector": {"app": name}, "ports": [{"port": 443, "targetPort": "https"}]}})


def admission_response(review: dict[str, Any], allowed: bool = True, patch: list | None = None,
                       status: dict | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": allowed}
    if patch is not None:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    if status is not None:
        response["status"] = status
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
