"""Kubernetes REST client metrics, with the names and labels upstream KubeVirt's
components export for their client-go clients:

    <ns>_rest_client_requests_total{code,method,host,resource,verb}   counter
    <ns>_rest_client_request_latency_seconds{verb,url}                histogram (to the response headers)

``code`` is the HTTP status, or "<error>" when no response came; ``verb`` is the API verb
(GET on a collection is LIST, with watch=true WATCH, PUT is UPDATE, POST is CREATE) and
``resource`` the plural ("none" for both outside the resource API, as /version); ``url``
is the request URL with the namespace and the object's name replaced by ``{namespace}``
and ``{name}``, as client-go's URL template, so one series stands for every object.
client-go's rate limiter histogram has no counterpart: our clients have no rate limiter.

Every request of the official client passes through its ApiClient's
``rest_client.request`` (generated API methods, call_api, watches alike), so that is where
the counting goes, once per ApiClient: several components given the same client (as in
tests) each get their own counts from the one wrapper.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client
from prometheus_client import Counter, Histogram
from prometheus_client.core import Metric

NONE = "none"
TRANSPORT_ERROR = "<error>"
# Kubernetes' apiserver_request_duration_seconds buckets, as upstream's histogram uses.
LATENCY_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
                   10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
_VERBS = {"PUT": "UPDATE", "POST": "CREATE", "PATCH": "PATCH", "DELETE": "DELETE"}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
# Installing and removing taps on a client: RestClientMetrics of different components may
# share one ApiClient.
_TAPS_LOCK = threading.Lock()


def _resource_parts(path: str) -> tuple[list[str], int] | None:
    """The path's segments and where the part after /api/VERSION or /apis/GROUP/VERSION
    starts; None outside the resource API."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 2:
        return parts, 2
    if parts[0] == "apis" and len(parts) > 3:
        return parts, 3
    return None


def describe_request(method: str, url: str) -> tuple[str, str, str, str]:
    """(host, resource, verb, URL template) of one request, as the labels want them."""
    split = urlsplit(url)
    found = _resource_parts(split.path)
    if found is None or found[0][found[1]:] == ["watch"]:
        return split.netloc, NONE, NONE, f"{split.scheme}://{split.netloc}{split.path}"
    parts, start = found
    template = parts[:start]
    rest = parts[start:]
    watching = rest[0] == "watch"
    if watching:
        template.append("watch")
        rest = rest[1:]
    # namespaces/NS/KIND... names a namespaced kind, but namespaces/NS/status is the
    # Namespace's own subresource (the API server's own parsing makes the same exception).
    if len(rest) > 2 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES:
        template += ["namespaces", "{namespace}"]
        rest = rest[2:]
    resource, named = rest[0], len(rest) > 1
    template += [resource, *(["{name}"] if named else []), *rest[2:]]
    if method == "GET":
        watching = watching or parse_qs(split.query).get("watch", [""])[0].lower() in ("true", "1")
        verb = "WATCH" if watching else "GET" if named else "LIST"
    else:
        verb = _VERBS.get(method, method)
    return split.netloc, resource, verb, f"{split.scheme}://{split.netloc}/{'/'.join(template)}"


class _Tap:
    """Stands in for one RESTClientObject's request method and tells every sink."""

    def __init__(self, rest: Any) -> None:
        self.original: Callable[..., Any] = rest.request
        # Usually the class's method; one set on the instance (a test's stand-in) is put back.
        self.own_attribute = "request" in vars(rest)
        self.sinks: list[RestClientMetrics] = []

    def __call__(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            response = self.original(method, url, *args, **kwargs)
        except BaseException:
            self._record(method, url, TRANSPORT_ERROR, time.perf_counter() - started)
            raise
        self._record(method, url, str(response.status), time.perf_counter() - started)
        return response

    def _record(self, method: str, url: str, code: str, seconds: float) -> None:
        sinks = self.sinks
        if not sinks:
            return
        labels = describe_request(method.upper(), url)
        for sink in sinks:
            sink.observe(method.upper(), code, labels, seconds)


class RestClientMetrics:
    """A collector of the requests of the ApiClients given to instrument()."""

    def __init__(self, namespace: str = "") -> None:
        self._requests = Counter("rest_client_requests", "HTTP requests to the API server, by status code, "
                                 "method, host, resource and verb.",
                                 ["code", "method", "host", "resource", "verb"], namespace=namespace, registry=None)
        self._latency = Histogram("rest_client_request_latency_seconds", "Seconds from sending a request to "
                                  "the API server to its response's headers, by verb and URL template.",
                                  ["verb", "url"], namespace=namespace, registry=None, buckets=LATENCY_BUCKETS)

    def instrument(self, api: client.ApiClient) -> None:
        """Count api's requests from now on, until release(api)."""
        rest = api.rest_client
        with _TAPS_LOCK:
            tap = rest.request if isinstance(rest.request, _Tap) else _Tap(rest)
            rest.request = tap
            if self not in tap.sinks:
                # Copy on write: a request under way iterates the old list undisturbed.
                tap.sinks = [*tap.sinks, self]

    def release(self, api: client.ApiClient) -> None:
        """Stop counting api's requests; the client is as before once no one counts."""
        rest = api.rest_client
        with _TAPS_LOCK:
            tap = rest.request
            if not isinstance(tap, _Tap):
                return
            tap.sinks = [sink for sink in tap.sinks if sink is not self]
            if tap.sinks:
                return
            if tap.own_attribute:
                rest.request = tap.original
            else:
                del rest.request

    def observe(self, method: str, code: str, labels: tuple[str, str, str, str], seconds: float) -> None:
        host, resource, verb, url = labels
        self._requests.labels(code, method, host, resource, verb).inc()
        self._latency.labels(verb, url).observe(seconds)

    def describe(self) -> Iterable[Metric]:
        return [*self._requests.describe(), *self._latency.describe()]

    def collect(self) -> Iterator[Metric]:
        yield from self._requests.collect()
        yield from self._latency.collect()
