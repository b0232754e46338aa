"""The /metrics endpoint: one registry served by a small threaded HTTP server, over TLS
unless told otherwise (plain HTTP is for tests).

A thread per scrape, so a slow collector or a slow client never holds up the next
scrape; the TLS handshake happens on that thread too, not on the accepting one.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

from kubevirt_metrics.flags import DEFAULT_METRICS_PORT

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HANDSHAKE_SECONDS = 10.0
REQUEST_SECONDS = 30.0
# How soon the serving loop notices stop().
_POLL_SECONDS = 0.1

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _metrics_only(app: WSGIApp) -> WSGIApp:
    """prometheus_client answers on every path; scrapers and people should find one."""
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"metrics are served at {METRICS_PATH}\n".encode()]
        return app(environ, start_response)
    return serve


class _QuietHandler(WSGIRequestHandler):
    timeout = REQUEST_SECONDS  # a client that stops reading must not keep its thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("metrics: %s " + format, self.address_string(), *args)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], ssl_context: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._ssl_context = ssl_context
        super().__init__(address, _QuietHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the bind address to a host name, which can stall
        # for seconds where reverse DNS does not answer; the address is name enough.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self._ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_SECONDS)
        with self._ssl_context.wrap_socket(request, server_side=True) as secured:
            super().finish_request(secured, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A scraper that hangs up or speaks plain HTTP to TLS is its own problem, not ours.
        log.debug("metrics: request from %s failed", client_address, exc_info=True)


class MetricsServer:
    """Serves ``registry`` on ``/metrics``; ``port`` 0 picks a free port (read ``port`` after
    start). Must be stopped: the serving thread holds the port until then."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = DEFAULT_METRICS_PORT,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._ssl_context = ssl_context
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "http" if self._ssl_context is None else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{METRICS_PATH}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the metrics server is already running")
        server = _Server((self.host, self.port), self._ssl_context)
        server.set_app(_metrics_only(make_wsgi_app(self.registry)))
        self.port = server.server_port
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _POLL_SECONDS},
                                  name=f"metrics-{self.port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        log.info("serving metrics on %s", self.url)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop listening; True once the serving thread has ended. Stopping twice is fine."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return True
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        thread.join(timeout)
        return not thread.is_alive()

    def __enter__(self) -> MetricsServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
