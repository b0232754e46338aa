"""virt-api's serving certificate, issued from the cluster CA for the names the API server
uses to reach it (the Service's DNS names, and the pod IP it resolves them to)."""

from __future__ import annotations

import ssl

from pki.authority import KeyPair, issue
from pki.server_tls import server_ssl_context

SERVICE = "virt-api"


def service_names(namespace: str) -> tuple[str, ...]:
    return (SERVICE, f"{SERVICE}.{namespace}", f"{SERVICE}.{namespace}.svc", f"{SERVICE}.{namespace}.svc.cluster.local")


def serving_context(ca: KeyPair, namespace: str, addresses: tuple[str, ...]) -> ssl.SSLContext:
    serving = issue(ca, f"{SERVICE}.{namespace}.svc", dns_names=(*service_names(namespace), "localhost"),
                    ips=addresses, server=True)
    return server_ssl_context(serving)
