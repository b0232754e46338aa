"""The metrics endpoint's serving certificate, issued from the cluster CA.

Server authentication only: Prometheus scrapes without a client certificate, as it does
upstream's components.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from pki.authority import KeyPair, issue


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
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files only; they live for a moment in a private directory.
    with tempfile.TemporaryDirectory(prefix="metrics-tls-") as scratch:
        cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
        cert.write_bytes(serving.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(serving.key_pem)
        context.load_cert_chain(cert, key)
    return context
