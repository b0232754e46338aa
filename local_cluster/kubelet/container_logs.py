"""GET /containerLogs/{namespace}/{pod}/{container}: the kubelet endpoint behind
`kubectl logs` (the API server's pods/log proxies here). Errors are plain text with
kubelet's status codes; the API server turns them into Status objects."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from local_cluster.kubelet.log_selection import LogUnavailable, container_status, is_live, select_run
from local_cluster.kubelet.log_stream import stream_log
from local_cluster.kubelet.pod_dir import PodDir
from local_cluster.kubelet.runtime import PodRuntime
from local_cluster.pod_log_options import BadLogQuery, from_query

# (namespace, name) -> the uid of the pod of that name this kubelet runs, if any.
PodFinder = Callable[[str, str], str | None]


class ContainerLogs:
    def __init__(self, runtime: PodRuntime, find_pod: PodFinder) -> None:
        self._runtime = runtime
        self._find_pod = find_pod

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/containerLogs/{namespace}/{pod}/{container}", self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        namespace, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            options = from_query(request.query)
        except BadLogQuery as error:
            return _text(400, str(error))
        uid = self._find_pod(namespace, pod)
        if uid is None:
            return _text(404, f'pod "{pod}" does not exist')
        status = self._runtime.status(uid)
        try:
            if status is None:
                raise LogUnavailable(400, f'container "{container}" in pod "{pod}" is waiting to start: '
                                          f'ContainerCreating')
            if container_status(status, container) is None:
                raise LogUnavailable(404, f'container "{container}" not found in pod "{pod}"')
            run = select_run(status, pod, container, options.previous)
        except LogUnavailable as error:
            return _text(error.code, error.message)
        path = PodDir.under(self._runtime.config.root, uid).log_file(container, run.attempt)
        try:
            log = open(path, "rb")  # noqa: SIM115 - closed below, after the stream
        except FileNotFoundError:
            return _text(400, f'container "{container}" in pod "{pod}" is waiting to start - no logs yet')

        def live() -> bool:
            # A caller that left ends a follow too, rather than when the container next writes.
            transport = request.transport
            if transport is None or transport.is_closing():
                return False
            return run.live and is_live(self._runtime.status(uid), container, run.attempt)

        with log:
            response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                async for chunk in stream_log(log, options, live):
                    if chunk:
                        await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the caller went away
        return response


def _text(code: int, message: str) -> web.Response:
    return web.Response(status=code, text=message, content_type="text/plain")
