"""The API server's client of kubelets: it streams a kubelet's answer (container logs)
to the caller, and turns a kubelet's plain-text refusals into Status objects the way
kube-apiserver's GenericHttpResponseChecker does.

It authenticates with the client certificate kube-apiserver uses for kubelets
(--kubelet-client-certificate), and, like kube-apiserver without
--kubelet-certificate-authority, does not verify the kubelet's serving certificate
(kubelets serve self-signed ones).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from local_cluster.apiserver import errors

_MAX_ERROR_BODY = 4 * 1024
_CONNECT_TIMEOUT = 10.0
_DISCONNECT_CHECK_SECONDS = 1.0
# NewGenericServerResponse: the reason and wording for a status a backend answered with.
_GENERIC = {
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", ""),
    404: ("NotFound", "the server could not find the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


def client_context(cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def backend_error(code: int, body: str, resource: str, name: str) -> errors.ApiError:
    if code == 400:
        return errors.bad_request(body)
    if code == 500:
        return errors.internal(body)
    reason, message = _GENERIC.get(code, ("", f"the server responded with the status code {code} but did not "
                                              f"return more information"))
    details = {"name": name, "kind": resource,
               "causes": [{"reason": "UnexpectedServerResponse", "message": body}] if body else []}
    return errors.ApiError(code, reason, f"{message or body} ( {resource} {name})", details)


async def _relay(request: web.Request, reply: aiohttp.ClientResponse, response: web.StreamResponse) -> None:
    """Copy the kubelet's stream to the caller until it ends or the caller leaves. A
    silent follow never writes, so the caller's departure is looked for between reads;
    leaving closes the kubelet connection, which ends the kubelet's side too."""
    while True:
        try:
            chunk = await asyncio.wait_for(reply.content.readany(), _DISCONNECT_CHECK_SECONDS)
        except TimeoutError:
            if request.transport is None or request.transport.is_closing():
                return
            continue
        if not chunk:
            return
        await response.write(chunk)


class KubeletClient:
    def __init__(self, client_cert: tuple[Path, Path] | None) -> None:
        self._tls = client_context(client_cert)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    async def stream_logs(self, request: web.Request, host: str, port: int, namespace: str, pod: str,
                          container: str, query: Mapping[str, str]) -> web.StreamResponse:
        path = "/containerLogs/" + "/".join(quote(part, safe="") for part in (namespace, pod, container))
        url = f"https://{host}:{port}{path}" + (f"?{urlencode(query)}" if query else "")
        try:
            async with self._client().get(url, ssl=self._tls, allow_redirects=False, timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=_CONNECT_TIMEOUT)) as reply:
                if not 200 <= reply.status <= 206:
                    body = (await reply.content.read(_MAX_ERROR_BODY)).decode(errors="replace").strip()
                    raise backend_error(reply.status, body, "pods/log", pod)
                response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain",
                                                                   "Cache-Control": "no-cache, private"})
                response.enable_chunked_encoding()
                await response.prepare(request)
                try:
                    await _relay(request, reply, response)
                    await response.write_eof()
                except (ConnectionResetError, aiohttp.ClientError):
                    # The caller stopped reading (a follow interrupted), or the kubelet went away
                    # mid-stream: the headers are sent, so the stream just ends.
                    pass
                return response
        except (aiohttp.ClientError, OSError) as error:
            # kube-apiserver answers a kubelet it cannot reach with the dial error, unclassified.
            raise errors.ApiError(500, "", f'Get "{url}": {error}') from None
