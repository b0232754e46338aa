"""The kubeconfig the local control plane writes for its users and components."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

CONTEXT = "kubevirt-py-local"


def write_kubeconfig(path: Path, server: str, token: str, ca_pem: bytes) -> Path:
    document = {
        "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT, "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "admin", "namespace": "default"}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file holds the admin token: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(document, handle, sort_keys=False)
    return path
