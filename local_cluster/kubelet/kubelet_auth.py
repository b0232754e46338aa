"""Who may call the kubelet's HTTPS server, and the certificate it serves with.

As a kubelet started without --tls-cert-file does, it serves a self-signed
certificate kept in <root>/pki (kube-apiserver does not verify kubelet serving
certificates unless given --kubelet-certificate-authority, and neither does ours).
Callers are authenticated the way kube-apiserver authenticates to kubelets: a client
certificate issued by the cluster CA (kubelet's --client-ca-file, here the CA of the
kubelet's kubeconfig), and only the API server's identity is authorized.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
import pki

# The common name of the client certificate kube-apiserver presents to kubelets
# (kubeadm's apiserver-kubelet-client).
APISERVER_CLIENT_NAME = "kube-apiserver-kubelet-client"
SERVING_STEM = "kubelet"


def serving_certificate(directory: Path, node_name: str, host_ip: str) -> tuple[Path, Path]:
    """The node's serving certificate and key; created once, reused by every restart."""
    found = pki.load(directory, SERVING_STEM)
    if found is None:
        # Like kubelet's own self-signed pair: a throwaway CA named after the node.
        ca = pki.new_ca(f"{node_name}-ca@{int(time.time())}")
        leaf = pki.issue(ca, node_name, dns_names=(node_name,), ips=(host_ip,))
        pki.save(pki.KeyPair(leaf.cert_pem + ca.cert_pem, leaf.key_pem), directory, SERVING_STEM)
    return directory / f"{SERVING_STEM}.crt", directory / f"{SERVING_STEM}.key"


def server_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    context.load_verify_locations(cafile=str(client_ca))
    # Optional, so that a caller without a certificate gets a 401 rather than a
    # failed handshake; a certificate that is presented must verify.
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def authorized(user: str | None) -> bool:
    return user == APISERVER_CLIENT_NAME
