"""APIService: a group served by another server through the API server, websockets included."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from kubernetes import client

from tests.apiserver.backends import HttpsBackend, run_pod_behind_service
from tests.apiserver.conftest import raw

GROUP = "things.example.io"


@pytest.fixture(scope="module")
def backend(api) -> Iterator[HttpsBackend]:
    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/v1",
                                  "resources": [{"name": "things/hello", "namespaced": True, "kind": "Thing",
                                                 "verbs": ["get"]}]})

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"name": request.match_info["name"], "user": request.headers.get("X-Remote-User"),
                                  "auth": request.headers.get("Authorization"), "query": request.query_string})

    async def echo(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(protocols=("plain.kubevirt.io",))
        await socket.prepare(request)
        async for message in socket:
            await socket.send_bytes(b"echo:" + message.data)
        return socket

    def routes(app: web.Application) -> None:
        app.router.add_get(f"/apis/{GROUP}/v1", discovery)
        app.router.add_get(f"/apis/{GROUP}/v1/namespaces/{{ns}}/things/{{name}}/hello", hello)
        app.router.add_get(f"/apis/{GROUP}/v1/namespaces/{{ns}}/things/{{name}}/echo", echo)

    server = HttpsBackend(routes, names=("things-api.aggregated.svc",))
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "aggregated"}})
    run_pod_behind_service(core, "aggregated", "things-api", server.port)
    client.ApiregistrationV1Api(api).create_api_service({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": f"v1.{GROUP}"},
        "spec": {"group": GROUP, "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
                 "service": {"namespace": "aggregated", "name": "things-api", "port": 443},
                 "caBundle": server.ca_bundle}})
    yield server
    client.ApiregistrationV1Api(api).delete_api_service(f"v1.{GROUP}")
    core.delete_namespace("aggregated")
    server.close()


def test_group_is_discoverable_and_available(api, backend) -> None:
    status, groups = raw(api, "GET", "/apis")
    assert any(g["name"] == GROUP for g in groups["groups"])
    status, resources = raw(api, "GET", f"/apis/{GROUP}/v1")
    assert status == 200 and resources["resources"][0]["name"] == "things/hello"
    service = client.ApiregistrationV1Api(api).read_api_service(f"v1.{GROUP}")
    assert {c.type: c.status for c in service.status.conditions}["Available"] == "True"


def test_requests_are_proxied_with_the_caller_identity(api, backend) -> None:
    status, body = raw(api, "GET", f"/apis/{GROUP}/v1/namespaces/default/things/t1/hello", query=[("x", "1")])
    assert status == 200
    assert body == {"name": "t1", "user": "system:admin", "auth": None, "query": "x=1"}


def test_websocket_is_proxied_both_ways(control_plane, api, backend) -> None:
    host = api.configuration.host
    token = api.configuration.auth_settings()["BearerToken"]["value"]
    tls = ssl.create_default_context(cafile=api.configuration.ssl_ca_cert)

    async def talk() -> list[bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{host}/apis/{GROUP}/v1/namespaces/default/things/t1/echo",
                                          headers={"Authorization": token}, protocols=("plain.kubevirt.io",),
                                          ssl=tls) as socket:
                replies = []
                for payload in (b"one", b"two"):
                    await socket.send_bytes(payload)
                    replies.append((await socket.receive(timeout=5)).data)
                return replies

    assert asyncio.run(talk()) == [b"echo:one", b"echo:two"]


def test_unreachable_backend_is_503(api) -> None:
    client.ApiregistrationV1Api(api).create_api_service({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.nowhere.example.io"},
        "spec": {"group": "nowhere.example.io", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
                 "service": {"namespace": "default", "name": "missing", "port": 443}}})
    try:
        status, body = raw(api, "GET", "/apis/nowhere.example.io/v1/things")
        assert status == 503 and body["reason"] == "ServiceUnavailable"
    finally:
        client.ApiregistrationV1Api(api).delete_api_service("v1.nowhere.example.io")
