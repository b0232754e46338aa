"""virt-api: one HTTPS server for the admission webhooks and the subresources API group,
behind the API server (webhooks call it; the APIService aggregates it).

    routes = admission routes + subresource routes + /healthz + /metrics

/metrics (no authentication, as upstream's) carries virt-api's request metrics
(virt_api.metrics), its Kubernetes client's and the process's. The subresources answer
only the API server's front proxy (virt_api.front_proxy).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable

from aiohttp import web
from kubernetes import client

from kube_client.front_proxy import FrontProxyTrust
from kubevirt_metrics.registry import component_registry
from kubevirt_metrics.status_gauge import StatusGauge
from kubevirt_metrics.runtime import rest_client_metrics
from pki.authority import KeyPair
from pki.cluster_ca import ensure_ca
from virt_api.front_proxy import guard, load_trust, require_client_certificates
from virt_api.metrics import METRICS_PATH, HttpMetrics, metrics_handler
from virt_api.registration import publish_ca_bundle
from virt_api.tls import serving_context

log = logging.getLogger(__name__)

# Each part of virt-api contributes routes, built from the API client and the cluster CA.
RouteSource = Callable[[client.ApiClient, KeyPair], Iterable[web.RouteDef]]


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


class VirtAPI:
    def __init__(self, api: client.ApiClient, namespace: str, host: str, port: int,
                 route_sources: Iterable[RouteSource] = ()) -> None:
        self._api = api
        self._namespace = namespace
        self._host = host
        self.port = port
        self._sources = list(route_sources)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="virt-api", daemon=True)
        self._runner: web.AppRunner | None = None
        self._serving = False
        self.registry = component_registry()
        self._http_metrics = HttpMetrics()
        self._rest_metrics = rest_client_metrics()
        self.registry.register(self._http_metrics)
        self.registry.register(self._rest_metrics)
        # Ready as the readiness probe sees it: serving, with the CA bundle published.
        self.registry.register(StatusGauge("kubevirt_virt_api_ready_status",
                                           "Whether this virt-api is serving (1) or not (0).",
                                           lambda: self._serving))

    def _app(self, ca: KeyPair, trust: FrontProxyTrust | None) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024,
                              middlewares=[self._http_metrics.middleware, guard(trust)])
        app.router.add_get("/healthz", _healthz)
        app.router.add_get(METRICS_PATH, metrics_handler(self.registry))
        for source in self._sources:
            app.add_routes(list(source(self._api, ca)))
        return app

    async def _serve(self) -> None:
        ca = await asyncio.to_thread(ensure_ca, client.CoreV1Api(self._api))
        trust = await asyncio.to_thread(load_trust, self._api)
        # The API server reaches only ready pods, and we are ready once listening: the
        # bundle is in place before the first request can come.
        await asyncio.to_thread(publish_ca_bundle, self._api, ca.cert_pem)
        self._runner = web.AppRunner(self._app(ca, trust), access_log=None)
        await self._runner.setup()
        context = serving_context(ca, self._namespace, (self._host,))
        require_client_certificates(context, trust)
        site = web.TCPSite(self._runner, self._host, self.port, ssl_context=context)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        self._serving = True
        log.info("virt-api serving on %s:%s", self._host, self.port)

    def start(self) -> None:
        self._rest_metrics.instrument(self._api)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(60)

    def stop(self, timeout: float = 10.0) -> None:
        self._serving = False
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._rest_metrics.release(self._api)
