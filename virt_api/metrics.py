"""virt-api's own metrics and its /metrics endpoint.

Upstream's virt-api serves /metrics on its one HTTPS port (8443), without authentication
(Prometheus scrapes it over TLS, as every component's), and so does ours, on the same
server as the webhooks and subresources.

    kubevirt_virt_api_http_requests_total{route,method,code}          counter
    kubevirt_virt_api_http_request_duration_seconds{route,method}     histogram
    kubevirt_console_active_connections{namespace,vmi}                gauge (upstream's name)

Upstream has no server-side request metric of virt-api, so those two names are ours.
``route`` is aiohttp's route template (``.../namespaces/{namespace}/.../{name}/pause``),
never the path, so a series stands for a kind of request, not an object; requests no
route matched share "unmatched". Websocket sessions (the console) are counted but not
timed: their length is the user's, not virt-api's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
CONSOLE_ROUTE_SUFFIX = "/virtualmachineinstances/{name}/console"
# Admission reviews and subresource calls take milliseconds; the API server gives up at 10s.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


class HttpMetrics:
    """A collector of virt-api's requests, fed by middleware()."""

    def __init__(self) -> None:
        self._requests = Counter("kubevirt_virt_api_http_requests", "HTTP requests virt-api answered, by route "
                                 "template, method and status code.", ["route", "method", "code"], registry=None)
        self._duration = Histogram("kubevirt_virt_api_http_request_duration_seconds", "Seconds virt-api took to "
                                   "answer an HTTP request (websocket sessions excluded), by route template and "
                                   "method.", ["route", "method"], registry=None, buckets=DURATION_BUCKETS)
        # (namespace, vmi) -> open console connections; a VMI's series goes with its last
        # console, as VMIs come and go by the thousand.
        self._consoles: dict[tuple[str, str], int] = {}
        self._consoles_lock = threading.Lock()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = route_of(request)
        console = (request.match_info.get("namespace", ""), request.match_info.get("name", "")) \
            if route.endswith(CONSOLE_ROUTE_SUFFIX) else None
        if console is not None:
            self._console_opened(console)
        code = 500  # what aiohttp answers for an exception other than an HTTPException
        try:
            response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as error:
            code = error.status
            raise
        finally:
            if console is not None:
                self._console_closed(console)
            self._requests.labels(route, request.method, str(code)).inc()
            if code != 101:
                self._duration.labels(route, request.method).observe(time.perf_counter() - started)

    def _console_opened(self, console: tuple[str, str]) -> None:
        with self._consoles_lock:
            self._consoles[console] = self._consoles.get(console, 0) + 1

    def _console_closed(self, console: tuple[str, str]) -> None:
        with self._consoles_lock:
            left = self._consoles.pop(console, 1) - 1
            if left > 0:
                self._consoles[console] = left

    def _console_family(self, *, current: bool = True) -> GaugeMetricFamily:
        family = GaugeMetricFamily("kubevirt_console_active_connections", "Console connections open now, by "
                                   "namespace and VMI.", labels=["namespace", "vmi"])
        with self._consoles_lock:
            open_now = list(self._consoles.items()) if current else []
        for labels, count in open_now:
            family.add_metric(list(labels), count)
        return family

    def describe(self) -> Iterable[Metric]:
        return [*self._requests.describe(), *self._duration.describe(), self._console_family(current=False)]

    def collect(self) -> Iterator[Metric]:
        yield from self._requests.collect()
        yield from self._duration.collect()
        yield self._console_family()


def metrics_handler(registry: CollectorRegistry) -> Handler:
    async def serve(_request: web.Request) -> web.Response:
        # Off the event loop: collecting reads /proc and may take a while on a busy node.
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
    return serve
