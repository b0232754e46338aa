"""Only the API server may call the subresources: their callers were authenticated and
authorized there, and virt-api acts for them with its own service account. A request
under /apis/subresources.kubevirt.io/v1/namespaces/ must come with the API server's
front-proxy client certificate (the CA and names kube-system's
extension-apiserver-authentication publishes, as upstream's virt-api checks); anyone
else who reaches virt-api's port gets 401. Discovery, /version and /healthz stay open,
as upstream's info endpoints do, and so do the admission webhooks (the API server calls
them without a client certificate, and they only answer about the object sent).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web
from kubernetes import client

from kube_client import front_proxy
from kube_client.front_proxy import FrontProxyTrust
from pki.peer import client_name
from virt_api.subresources.status import StatusError
from virt_api.subresources.table import GROUP_VERSION_PATH

log = logging.getLogger(__name__)

_GUARDED_PREFIX = f"{GROUP_VERSION_PATH}/namespaces/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_trust(api: client.ApiClient) -> FrontProxyTrust | None:
    """The front proxy's CA and names; None (and the subresources refused) when they cannot be read."""
    try:
        config_map = client.CoreV1Api(api).read_namespaced_config_map(front_proxy.CONFIG_MAP, front_proxy.NAMESPACE)
        return front_proxy.trust_from(config_map.data)
    except (client.ApiException, ValueError) as error:
        reason = f"HTTP {error.status}" if isinstance(error, client.ApiException) else str(error)
        log.error("cannot read %s/%s (%s): the subresources will refuse every request",
                  front_proxy.NAMESPACE, front_proxy.CONFIG_MAP, reason)
        return None


def require_client_certificates(context: ssl.SSLContext, trust: FrontProxyTrust | None) -> None:
    """Ask every client for a certificate and verify one against the front proxy's CA; a
    client may still come without (the webhooks' caller, probes, metrics scrapes)."""
    if trust is not None:
        context.load_verify_locations(cadata=trust.ca_pem)
        context.verify_mode = ssl.CERT_OPTIONAL


def guard(trust: FrontProxyTrust | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_GUARDED_PREFIX):
            if trust is None:
                return _unauthorized(f"virt-api cannot verify its callers: {front_proxy.NAMESPACE}/"
                                     f"{front_proxy.CONFIG_MAP} could not be read")
            transport = request.transport
            name = client_name(transport.get_extra_info("peercert") if transport is not None else None)
            if name is None:
                return _unauthorized("a client certificate from the API server's front proxy is required")
            if not trust.admits(name):
                return _unauthorized(f"client certificate for {name} is not one of the front proxy's names "
                                     f"({', '.join(trust.allowed_names)})")
        return await handler(request)
    return middleware


def _unauthorized(message: str) -> web.Response:
    return StatusError(401, "Unauthorized", message).response()
