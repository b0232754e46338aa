"""How an aggregated API server (virt-api) tells requests the API server proxied from
anyone else's: kube-system/extension-apiserver-authentication, which kube-apiserver
publishes from its requestheader options.

The API server proxies with a client certificate from its front-proxy CA, a CA of its own
that signs nothing else, under one of the allowed names; only such a request's
X-Remote-User and X-Remote-Group say who asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CONFIG_MAP = "extension-apiserver-authentication"
NAMESPACE = "kube-system"
# The name kube-apiserver's front-proxy client certificate is issued for (kubeadm's choice).
CLIENT_NAME = "front-proxy-client"
_CA_KEY = "requestheader-client-ca-file"
_NAMES_KEY = "requestheader-allowed-names"


@dataclass(frozen=True)
class FrontProxyTrust:
    """What a proxied request's client certificate must be: issued by ca_pem, for one of
    allowed_names (any name, when empty)."""

    ca_pem: str
    allowed_names: tuple[str, ...]

    def admits(self, name: str) -> bool:
        return not self.allowed_names or name in self.allowed_names


def config_map_data(client_ca_pem: str, front_proxy_ca_pem: str) -> dict[str, str]:
    """The ConfigMap's data as kube-apiserver writes it."""
    return {
        "client-ca-file": client_ca_pem,
        _CA_KEY: front_proxy_ca_pem,
        _NAMES_KEY: json.dumps([CLIENT_NAME]),
        "requestheader-username-headers": json.dumps(["X-Remote-User"]),
        "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
        "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
    }


def trust_from(data: dict[str, Any] | None) -> FrontProxyTrust:
    """The trust the ConfigMap's data describes; ValueError naming the key that is wrong."""
    data = data or {}
    ca_pem = data.get(_CA_KEY)
    if not isinstance(ca_pem, str) or "BEGIN CERTIFICATE" not in ca_pem:
        raise ValueError(f"{NAMESPACE}/{CONFIG_MAP}: {_CA_KEY} holds no certificate")
    try:
        names = json.loads(data.get(_NAMES_KEY) or "[]")
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{NAMESPACE}/{CONFIG_MAP}: {_NAMES_KEY} is not a JSON list of names")
    return FrontProxyTrust(ca_pem, tuple(names))
