"""Only the API server may call virt-api's subresources: past the aggregation layer, a
request needs the API server's front-proxy client certificate (the CA and name that
kube-system/extension-apiserver-authentication publishes); a caller without one, with
a certificate of the cluster CA (which every component can issue from), or with one for
another name is refused. Discovery, /healthz and /metrics stay open."""

from __future__ import annotations

import json
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

import pki
from kube_client import front_proxy
from pki.cluster_ca import ensure_ca
from tests.virt_api.test_subresources_support import GROUP_PATH, Env, env  # noqa: F401  (fixture)

GUEST_OS_INFO = f"{GROUP_PATH}/namespaces/default/virtualmachineinstances/nobody/guestosinfo"


def _context(env: Env, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ensure_ca(client.CoreV1Api(env.api)).cert_pem.decode())
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def _get(env: Env, path: str, context: ssl.SSLContext) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{env.virt_api.port}{path}", timeout=10,
                                    context=context) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _issued(ca: pki.KeyPair, name: str, directory: Path) -> tuple[Path, Path]:
    return pki.save(pki.issue(ca, name, server=False, client=True), directory, name)


def test_the_front_proxy_certificate_passes(env: Env) -> None:
    status, body = _get(env, GUEST_OS_INFO, _context(env, env.front_proxy_cert))
    assert status == 404 and body["reason"] == "NotFound"  # past the check: there is no such VMI


def test_a_caller_without_a_certificate_is_unauthorized(env: Env) -> None:
    status, body = _get(env, GUEST_OS_INFO, _context(env))
    assert (status, body["kind"], body["reason"]) == (401, "Status", "Unauthorized")
    assert "front proxy" in body["message"]
    # What the API server's callers and the kubelet read stays open.
    for open_path in ("/healthz", "/metrics", GROUP_PATH, f"{GROUP_PATH}/version"):
        assert _get_raw(env, open_path) == 200, open_path


def _get_raw(env: Env, path: str) -> int:
    with urllib.request.urlopen(f"https://127.0.0.1:{env.virt_api.port}{path}", timeout=10,
                                context=_context(env)) as response:
        return response.status


def test_a_certificate_of_the_cluster_ca_is_not_the_front_proxys(env: Env) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cert = _issued(ensure_ca(client.CoreV1Api(env.api)), front_proxy.CLIENT_NAME, Path(scratch))
        # Refused in the handshake (under TLS 1.3 the client learns it as its first read fails).
        with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
            _get(env, GUEST_OS_INFO, _context(env, cert))


def test_a_front_proxy_certificate_for_another_name_is_unauthorized(env: Env) -> None:
    proxy_ca = pki.load(env.front_proxy_cert[0].parent, "front-proxy-ca")
    assert proxy_ca is not None
    with tempfile.TemporaryDirectory() as scratch:
        status, body = _get(env, GUEST_OS_INFO, _context(env, _issued(proxy_ca, "someone-else", Path(scratch))))
    assert status == 401 and "someone-else" in body["message"] and front_proxy.CLIENT_NAME in body["message"]


def test_the_api_server_publishes_what_virt_api_trusts(env: Env) -> None:
    data = client.CoreV1Api(env.api).read_namespaced_config_map(front_proxy.CONFIG_MAP, front_proxy.NAMESPACE).data
    trust = front_proxy.trust_from(data)
    assert trust.allowed_names == (front_proxy.CLIENT_NAME,)
    assert trust.ca_pem.encode() == (env.front_proxy_cert[0].parent / "front-proxy-ca.crt").read_bytes()
    assert json.loads(data["requestheader-username-headers"]) == ["X-Remote-User"]


@pytest.mark.parametrize("data, key", [
    (None, "requestheader-client-ca-file"),
    ({"requestheader-client-ca-file": "not a certificate"}, "requestheader-client-ca-file"),
    ({"requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\n", "requestheader-allowed-names": "{"},
     "requestheader-allowed-names"),
])
def test_an_unusable_authentication_config_map_is_named(data: dict | None, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        front_proxy.trust_from(data)
