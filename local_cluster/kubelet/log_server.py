"""The kubelet's HTTPS server on the node address (kubelet's port 10250), served from
an event loop of its own: the rest of the kubelet is threads.

Only the node address is bound. Several simulated nodes (and several clusters) share
one machine, so when the wanted port is taken the server takes any free port; the
Node reports the port actually bound (status.daemonEndpoints.kubeletEndpoint.Port),
which is where the API server connects.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

from pki.peer import client_name
from local_cluster.kubelet.kubelet_auth import authorized

log = logging.getLogger(__name__)

KUBELET_PORT = 10250
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    transport = request.transport
    user = client_name(transport.get_extra_info("peercert") if transport is not None else None)
    if user is None:
        return web.Response(status=401, text="Unauthorized", content_type="text/plain")
    if not authorized(user):
        return web.Response(status=403, text=f"Forbidden (user={user}, verb=get, resource=nodes, "
                                             f"subresource=proxy)", content_type="text/plain")
    return await handler(request)


class KubeletServer:
    def __init__(self, host: str, port: int, tls: ssl.SSLContext, routes: list[web.RouteDef]) -> None:
        self.host = host
        self.port = port
        self._tls = tls
        self._routes = routes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="kubelet-server", daemon=True)
        self._thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(_START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        log.info("kubelet server listening on https://%s:%d", self.host, self.port)

    async def _serve(self) -> int:
        app = web.Application(middlewares=[_authorize])
        app.add_routes(self._routes)
        # Open follows are cancelled after a short grace: a stopping kubelet does not wait for them.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            return await self._bind(self.port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE or self.port == 0:
                raise
            log.warning("port %d of %s is taken; serving on a free port instead", self.port, self.host)
            return await self._bind(0)

    async def _bind(self, port: int) -> int:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, port, ssl_context=self._tls, reuse_address=True)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(_STOP_TIMEOUT)
            except Exception as error:  # stopping must not fail the kubelet's shutdown
                log.warning("kubelet server did not stop cleanly: %s", error)
        self._runner = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None
