"""Requests to kubevirt.io subresources (PUT start/stop/... and the console websocket),
made with the credentials of the official client's ApiClient, so every verb reaches the
cluster exactly as kubectl would: same host, CA, client certificate and bearer token.
"""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import quote

import urllib3
import websocket
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubevirt_api.groups import GROUP, SUBRESOURCES_GROUP, VERSION
from virtctl.errors import ApiError, status_message

Obj = dict[str, Any]

# Subresource calls return as soon as the request is recorded; a hung server must not hang the CLI.
REQUEST_TIMEOUT = (10.0, 60.0)
CONSOLE_SUBPROTOCOL = "plain.kubevirt.io"


def subresource_path(namespace: str, plural: str, name: str, verb: str) -> str:
    return (f"/apis/{SUBRESOURCES_GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{plural}/"
            f"{quote(name, safe='')}/{verb}")


def object_path(namespace: str, plural: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{plural}/{quote(name, safe='')}"


def request(api: client.ApiClient, method: str, path: str, body: Obj | None = None) -> Obj:
    """One JSON request; the decoded answer ({} when empty), or ApiError with the server's message."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    serialized = api.param_serialize(method, path, header_params=headers, body=body, auth_settings=["BearerToken"])
    status, reason, data = _send(api, serialized)
    if not 200 <= status < 300:
        raise ApiError(status, status_message(data, f"{status} {reason}"))
    try:
        decoded = json.loads(data) if data else {}
    except ValueError:
        decoded = {}
    return decoded if isinstance(decoded, dict) else {}


def _send(api: client.ApiClient, serialized: tuple[Any, ...]) -> tuple[int, str, bytes]:
    """Status, reason and body of one request; ApiError(0, ...) when the server was not reached."""
    method, url, headers, body, post_params = serialized
    try:
        response = api.call_api(method, url, headers, body, post_params, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as error:
        raise ApiError(error.status or 0, _transport_message(api, error.reason or str(error))) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiError(0, _transport_message(api, str(error))) from None
    try:
        return response.status, response.reason or "", response.read() or b""
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiError(0, _transport_message(api, str(error))) from None
    finally:
        response.response.release_conn()


def _transport_message(api: client.ApiClient, detail: str) -> str:
    return f"cannot reach the server at {api.configuration.host}: {detail}"


def _websocket_url(host: str, path: str) -> str:
    if host.startswith("https://"):
        return "wss://" + host[len("https://"):].rstrip("/") + path
    if host.startswith("http://"):
        return "ws://" + host[len("http://"):].rstrip("/") + path
    return host.rstrip("/") + path


def _sslopt(configuration: client.Configuration) -> Obj:
    """websocket-client TLS options equal to what the REST client uses for the same cluster."""
    options: Obj = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    if configuration.verify_ssl:
        options = {"cert_reqs": ssl.CERT_REQUIRED}
        if configuration.ssl_ca_cert:
            options["ca_certs"] = configuration.ssl_ca_cert
        if configuration.assert_hostname is not None:
            options["check_hostname"] = bool(configuration.assert_hostname)
    if configuration.cert_file:
        options["certfile"] = configuration.cert_file
    if configuration.key_file:
        options["keyfile"] = configuration.key_file
    if configuration.tls_server_name:
        options["server_hostname"] = configuration.tls_server_name
    return options


def dial(api: client.ApiClient, path: str, subprotocol: str, timeout: float) -> websocket.WebSocket:
    """Open a websocket to ``path``; ApiError carries the handshake's HTTP status and message."""
    configuration = api.configuration
    headers = []
    token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    if token:
        headers.append(f"Authorization: {token}")
    try:
        ws = websocket.create_connection(_websocket_url(configuration.host, path), timeout=timeout, header=headers,
                                         subprotocols=[subprotocol], sslopt=_sslopt(configuration),
                                         skip_utf8_validation=True)
    except websocket.WebSocketBadStatusException as error:
        raise ApiError(error.status_code, status_message(error.resp_body, str(error))) from None
    except (websocket.WebSocketException, OSError) as error:
        raise ApiError(0, _transport_message(api, str(error) or type(error).__name__)) from None
    # The handshake is bounded; the stream itself may stay quiet for as long as the user likes.
    ws.settimeout(None)
    return ws
