"""The aggregation layer: /apis/<group>/<version>/... served by another server (an APIService)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from kube_client.timestamps import now_text
from local_cluster.apiserver import ca_bundles, errors
from local_cluster.apiserver.services import ServiceResolver, ServiceUnreachable

Obj = dict[str, Any]

# Hop-by-hop and identity headers are not forwarded; the backend learns who asked
# from the front-proxy headers, as with kube-apiserver's requestheader authentication.
_DROPPED_REQUEST_HEADERS = {"host", "authorization", "connection", "upgrade", "content-length",
                            "transfer-encoding", "keep-alive", "sec-websocket-key", "sec-websocket-version",
                            "sec-websocket-extensions", "sec-websocket-protocol", "x-remote-user", "x-remote-group"}
_DROPPED_RESPONSE_HEADERS = {"connection", "transfer-encoding", "content-length", "keep-alive",
                             "content-encoding"}


class Aggregator:
    def __init__(self, resolver: ServiceResolver, client_cert: tuple[Path, Path] | None = None) -> None:
        """client_cert: the front-proxy client certificate every proxied call presents, by
        which the backend knows the X-Remote-* headers come from this server."""
        self._resolver = resolver
        self._client_cert = client_cert
        self._services: dict[tuple[str, str], Obj] = {}
        self._session: aiohttp.ClientSession | None = None

    def set_api_services(self, api_services: list[Obj]) -> None:
        self._services = {}
        for item in api_services:
            spec = item.get("spec") or {}
            if spec.get("group") and spec.get("version") and spec.get("service"):
                self._services[(spec["group"], spec["version"])] = spec

    def groups(self) -> dict[str, list[str]]:
        found: dict[str, list[tuple[int, str]]] = {}
        for (group, version), spec in self._services.items():
            found.setdefault(group, []).append((-int(spec.get("versionPriority", 0)), version))
        return {group: [v for _, v in sorted(versions)] for group, versions in found.items()}

    def serves(self, group: str, version: str | None = None) -> bool:
        if version is None:
            return any(g == group for g, _ in self._services)
        return (group, version) in self._services

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def proxy(self, request: web.Request, group: str, version: str, user: str) -> web.StreamResponse:
        spec = self._services.get((group, version))
        if spec is None:
            raise errors.ApiError(404, "NotFound", f"the server could not find the requested resource "
                                                   f"({group}/{version})")
        service = spec["service"]
        try:
            endpoint = await self._resolver.resolve(service["namespace"], service["name"],
                                                    int(service.get("port", 443)))
        except ServiceUnreachable as error:
            raise errors.service_unavailable(f"the server is currently unable to handle the request "
                                             f"({group}/{version}): {error}") from None
        url = endpoint.url(request.rel_url.path_qs)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_REQUEST_HEADERS}
        headers["X-Remote-User"] = user
        headers["X-Remote-Group"] = "system:authenticated"
        headers["X-Forwarded-Host"] = request.host
        tls = self._tls(spec)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._proxy_websocket(request, url, headers, tls, endpoint.tls_name)
        return await self._proxy_http(request, url, headers, tls, endpoint.tls_name)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    def _tls(self, spec: Obj) -> ssl.SSLContext | bool:
        """The client context for an APIService: its caBundle (or the system's trust, or
        none with insecureSkipTLSVerify), presenting the front-proxy certificate."""
        if spec.get("insecureSkipTLSVerify"):
            return False if self._client_cert is None else ca_bundles.unverified(self._client_cert)
        return ca_bundles.trusting(spec.get("caBundle") or "", self._client_cert)

    async def _proxy_http(self, request: web.Request, url: str, headers: dict[str, str],
                          tls: ssl.SSLContext | bool, tls_name: str) -> web.StreamResponse:
        body = await request.read()
        try:
            async with self._client().request(request.method, url, headers=headers, data=body or None, ssl=tls,
                                              server_hostname=tls_name, allow_redirects=False,
                                              timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as reply:
                response = web.StreamResponse(status=reply.status, headers={
                    k: v for k, v in reply.headers.items() if k.lower() not in _DROPPED_RESPONSE_HEADERS})
                await response.prepare(request)
                async for chunk in reply.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as error:
            raise errors.service_unavailable(f"error trying to reach service: {error}") from None

    async def _proxy_websocket(self, request: web.Request, url: str, headers: dict[str, str],
                               tls: ssl.SSLContext | bool, tls_name: str) -> web.StreamResponse:
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        ws_url = "wss" + url[len("https"):] if url.startswith("https") else url
        try:
            backend = await self._client().ws_connect(ws_url, headers=headers, protocols=protocols, ssl=tls,
                                                      server_hostname=tls_name, autoping=True)
        except (aiohttp.ClientError, aiohttp.WSServerHandshakeError) as error:
            status = getattr(error, "status", 503)
            raise errors.ApiError(status if status >= 400 else 503, "ServiceUnavailable",
                                  f"error upgrading connection: {error}") from None
        client = web.WebSocketResponse(protocols=[backend.protocol] if backend.protocol else ())
        await client.prepare(request)
        try:
            await _pump_both(client, backend)
        finally:
            await backend.close()
            await client.close()
        return client


async def _pump_both(client: web.WebSocketResponse, backend: aiohttp.ClientWebSocketResponse) -> None:
    async def forward(source: Any, sink: Any) -> None:
        async for message in source:
            if message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            else:
                break
        # The close code means something to clients (1001: another session took over).
        code = source.close_code or aiohttp.WSCloseCode.OK
        await sink.close(code=code if code not in (1005, 1006) else aiohttp.WSCloseCode.OK)

    tasks = [asyncio.create_task(forward(client, backend)), asyncio.create_task(forward(backend, client))]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def available_status() -> Obj:
    return {"conditions": [{"type": "Available", "status": "True", "reason": "Passed",
                            "message": "all checks passed", "lastTransitionTime": now_text()}]}
