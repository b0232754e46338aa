"""virt-api's /metrics: served over its HTTPS port without authentication, with the
process's metrics, its Kubernetes client's requests and its own requests by route
template; console connections are a gauge per VMI that goes away with the last one."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes import client
from prometheus_client import CollectorRegistry

from pki.cluster_ca import NAMESPACE, ensure_ca
from tests.metrics_text import samples as parse_samples
from virt_api.metrics import HttpMetrics
from virt_api.server import VirtAPI
from virt_api.subresources import subresource_routes

GUEST_OS_INFO = ("/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}"
                 "/guestosinfo")


@pytest.fixture(scope="module")
def virt_api(kubevirt_api: client.ApiClient) -> Iterator[tuple[VirtAPI, ssl.SSLContext]]:
    ca = ensure_ca(client.CoreV1Api(kubevirt_api))
    server = VirtAPI(kubevirt_api, NAMESPACE, "127.0.0.1", 0, [subresource_routes])
    server.start()
    try:
        yield server, ssl.create_default_context(cadata=ca.cert_pem.decode())
    finally:
        server.stop()


def _get(url: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _value(samples: list[tuple[str, dict[str, str], float]], metric: str, /, **labels: str) -> float | None:
    return next((value for sample, found, value in samples if sample == metric and found == labels), None)


def test_metrics_are_served_over_tls_with_requests_by_route(virt_api: tuple[VirtAPI, ssl.SSLContext]) -> None:
    server, context = virt_api
    base = f"https://127.0.0.1:{server.port}"
    assert _get(f"{base}/healthz", context)[0] == 200
    assert _get(f"{base}/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/v1/guestosinfo",
                context)[0] >= 400  # no such VMI
    assert _get(f"{base}/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/v2/guestosinfo",
                context)[0] >= 400
    assert _get(f"{base}/no-such-path", context)[0] == 404
    status, body = _get(f"{base}/metrics", context)  # no client certificate, no token
    assert status == 200
    samples = parse_samples(body.decode())
    assert _value(samples, "kubevirt_virt_api_http_requests_total", route="/healthz", method="GET", code="200") == 1
    assert _value(samples, "kubevirt_virt_api_http_requests_total", route="unmatched", method="GET",
                  code="404") == 1
    by_route = [value for name, labels, value in samples
                if name == "kubevirt_virt_api_http_requests_total" and labels["route"] == GUEST_OS_INFO]
    assert sum(by_route) == 2  # both VMIs, one route
    assert _value(samples, "kubevirt_virt_api_http_request_duration_seconds_count", route=GUEST_OS_INFO,
                  method="GET") == 2
    assert _value(samples, "process_cpu_seconds_total") is not None
    assert _value(samples, "kubevirt_virt_api_ready_status") == 1
    # Reading the cluster CA and looking up the VMIs went through its Kubernetes client.
    assert sum(value for name, _, value in samples if name == "kubevirt_rest_client_requests_total") > 0


def test_console_connections_are_a_gauge_per_vmi() -> None:
    metrics = HttpMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)

    def consoles() -> dict[tuple[str, str], float]:
        return {(labels["namespace"], labels["vmi"]): value
                for name, labels, value in _samples_of(registry) if name == "kubevirt_console_active_connections"}

    async def scenario() -> None:
        connected, hang_up = asyncio.Event(), asyncio.Event()

        async def console(request: web.Request) -> web.WebSocketResponse:
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            connected.set()
            await hang_up.wait()
            await socket.close()
            return socket

        app = web.Application(middlewares=[metrics.middleware])
        app.router.add_get("/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}"
                           "/console", console)
        async with TestClient(TestServer(app)) as http:
            path = "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm/console"
            first = await http.ws_connect(path)
            await connected.wait()
            connected.clear()
            second = await http.ws_connect(path)
            await connected.wait()
            assert consoles() == {("ns", "vm"): 2}
            hang_up.set()
            for socket in (first, second):
                assert (await socket.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                await socket.close()
            for _ in range(100):
                if not consoles():
                    break
                await asyncio.sleep(0.01)
        assert consoles() == {}
        # Counted, but not timed: a session lasts as long as its user wants.
        assert registry.get_sample_value("kubevirt_virt_api_http_requests_total", {
            "route": "/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}"
                     "/console", "method": "GET", "code": "101"}) == 2
        assert not [name for name, *_ in _samples_of(registry)
                    if name == "kubevirt_virt_api_http_request_duration_seconds_count"]

    asyncio.run(scenario())


def _samples_of(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [(sample.name, sample.labels, sample.value) for family in registry.collect() for sample in family.samples]
