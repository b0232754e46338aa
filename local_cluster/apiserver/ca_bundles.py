"""TLS client contexts trusting a caBundle (of a webhook, an APIService), one per bundle.

Why cached: aiohttp pools connections per SSL context, so a context built per call would
cost every webhook or aggregated call a fresh TLS handshake on both sides."""

from __future__ import annotations

import base64
import functools
import ssl


@functools.lru_cache(maxsize=64)
def trusting(bundle: str) -> ssl.SSLContext:
    """A client context verifying servers against the base64 PEM ``bundle`` only."""
    return ssl.create_default_context(cadata=base64.b64decode(bundle).decode())
