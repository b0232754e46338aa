"""The metrics endpoint's serving certificate, issued from the cluster CA.

Server authentication only: Prometheus scrapes without a client certificate, as it does
upstream's components.
"""

from __future__ import annotations

import ipaddress
import ssl

from pki.authority import KeyPair, issue
from pki.server_tls import server_ssl_context


def _routable(address: str) -> bool:
    """A wildcard bind address names no host a client could verify."""
    try:
        return not ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def serving_context(ca: KeyPair, common_name: str, *, dns_names: tuple[str, ...] = (),
                    addresses: tuple[str, ...] = ()) -> ssl.SSLContext:
    serving = issue(ca, common_name, dns_names=(common_name, *dns_names, "localhost"),
                    ips=tuple(a for a in dict.fromkeys((*addresses, "127.0.0.1")) if _routable(a)), server=True)
    return server_ssl_context(serving)
