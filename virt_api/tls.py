"""virt-api's serving certificate, issued from the cluster CA for the names the API server
uses to reach it (the Service's DNS names, and the pod IP it resolves them to)."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from pki.authority import KeyPair, issue

SERVICE = "virt-api"


def service_names(namespace: str) -> tuple[str, ...]:
    return (SERVICE, f"{SERVICE}.{namespace}", f"{SERVICE}.{namespace}.svc", f"{SERVICE}.{namespace}.svc.cluster.local")


def serving_context(ca: KeyPair, namespace: str, addresses: tuple[str, ...]) -> ssl.SSLContext:
    serving = issue(ca, f"{SERVICE}.{namespace}.svc", dns_names=(*service_names(namespace), "localhost"),
                    ips=addresses, server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # load_cert_chain reads files only; they live for a moment in a private directory.
    with tempfile.TemporaryDirectory(prefix="virt-api-tls-") as scratch:
        cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
        cert.write_bytes(serving.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(serving.key_pem)
        context.load_cert_chain(cert, key)
    return context
