"""Who a TLS peer is: the name in the client certificate a server verified."""

from __future__ import annotations

from typing import Any


def client_name(peer_certificate: dict[str, Any] | None) -> str | None:
    """The common name of a verified client certificate (ssl's getpeercert() form); None
    when there was none, or it names nobody."""
    for rdn in (peer_certificate or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
