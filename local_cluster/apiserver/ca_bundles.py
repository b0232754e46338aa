"""TLS client contexts of the API server's calls out (webhooks, APIServices): trusting a
caBundle (the system's trust without one, nothing with insecureSkipTLSVerify), and
presenting a client certificate when the caller has one (the front proxy's).

Why cached: aiohttp pools connections per SSL context, so a context built per call would
cost every webhook or aggregated call a fresh TLS handshake on both sides."""

from __future__ import annotations

import base64
import functools
import ssl
from pathlib import Path


@functools.lru_cache(maxsize=64)
def trusting(bundle: str, client_cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A client context verifying servers against the base64 PEM ``bundle`` only (the
    system's trust store when it is empty)."""
    context = ssl.create_default_context(cadata=base64.b64decode(bundle).decode() if bundle else None)
    return _presenting(context, client_cert)


@functools.lru_cache(maxsize=4)
def unverified(client_cert: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that verifies no server (insecureSkipTLSVerify) yet presents client_cert."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _presenting(context, client_cert)


def _presenting(context: ssl.SSLContext, client_cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    if client_cert is not None:
        context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    return context
