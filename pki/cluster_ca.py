"""The cluster's CA for mutual TLS between our components, kept in a Secret.

Whichever component starts first creates it; every later one (and every restart)
reads the same Secret, so certificates issued anywhere verify everywhere. Creation
is guarded by the API server's create-if-absent, so two first starters never end up
with two CAs.

On a real cluster the components may only get this one Secret and create Secrets in
their namespace (deploy/10-rbac.yaml): the namespace is created only when the API
server says it is missing, because a service account allowed to create namespaces
would be far more powerful than the CA bootstrap needs.
"""

from __future__ import annotations

import base64

import grpc
from kubernetes import client

from pki.authority import KeyPair, issue, new_ca

NAMESPACE = "kubevirt"
SECRET = "kubevirt-py-ca"


def _decode(secret: client.V1Secret) -> KeyPair:
    data = secret.data or {}
    return KeyPair(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))


def _ensure_namespace(core: client.CoreV1Api, namespace: str) -> None:
    try:
        core.create_namespace({"metadata": {"name": namespace}})
    except client.ApiException as error:
        if error.status != 409:
            raise


def _create_secret(core: client.CoreV1Api, namespace: str, body: dict) -> None:
    try:
        core.create_namespaced_secret(namespace, body)
    except client.ApiException as error:
        if error.status != 404:  # 404: the namespace itself is missing (a bare API server)
            raise
        _ensure_namespace(core, namespace)
        core.create_namespaced_secret(namespace, body)


def ensure_ca(core: client.CoreV1Api, namespace: str = NAMESPACE, name: str = SECRET) -> KeyPair:
    try:
        return _decode(core.read_namespaced_secret(name, namespace))
    except client.ApiException as error:
        if error.status != 404:
            raise
    ca = new_ca("kubevirt-py")
    body = {"metadata": {"name": name, "namespace": namespace}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": base64.b64encode(ca.cert_pem).decode(),
                     "tls.key": base64.b64encode(ca.key_pem).decode()}}
    try:
        _create_secret(core, namespace, body)
        return ca
    except client.ApiException as error:
        if error.status != 409:
            raise
    return _decode(core.read_namespaced_secret(name, namespace))  # another component won the race


def server_credentials(ca: KeyPair, common_name: str, addresses: tuple[str, ...] = ("127.0.0.1",),
                       names: tuple[str, ...] = ("localhost",)) -> grpc.ServerCredentials:
    """Serving credentials that also demand a client certificate from the same CA."""
    serving = issue(ca, common_name, dns_names=(common_name, *names), ips=addresses, server=True, client=True)
    return grpc.ssl_server_credentials([(serving.key_pem, serving.cert_pem)], root_certificates=ca.cert_pem,
                                       require_client_auth=True)


def channel_credentials(ca: KeyPair, client_name: str) -> grpc.ChannelCredentials:
    identity = issue(ca, client_name, server=False, client=True)
    return grpc.ssl_channel_credentials(root_certificates=ca.cert_pem, private_key=identity.key_pem,
                                        certificate_chain=identity.cert_pem)
