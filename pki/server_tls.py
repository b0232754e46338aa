"""An ssl.SSLContext serving a certificate held in memory.

ssl's load_cert_chain reads files only, so the pair lives for a moment in a private
temporary directory (the key file mode 0600 from its creation)."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from pki.authority import KeyPair


def server_ssl_context(serving: KeyPair) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="serving-tls-") as scratch:
        cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
        cert.write_bytes(serving.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(serving.key_pem)
        context.load_cert_chain(cert, key)
    return context
