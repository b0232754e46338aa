"""The CA bootstrap with no more rights than deploy/10-rbac.yaml grants: get the CA
Secret by name and create Secrets in the install namespace, never create namespaces."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from pki.cluster_ca import ensure_ca


class RestrictedCore:
    """A CoreV1Api as a component's service account sees it on a real cluster."""

    def __init__(self, namespace_exists: bool = True) -> None:
        self.namespace_exists = namespace_exists
        self.secrets: dict[tuple[str, str], dict] = {}
        self.calls: list[str] = []

    def read_namespaced_secret(self, name: str, namespace: str) -> client.V1Secret:
        self.calls.append("get secret")
        if (namespace, name) not in self.secrets:
            raise client.ApiException(status=404, reason="Not Found")
        return client.V1Secret(data=self.secrets[(namespace, name)]["data"])

    def create_namespaced_secret(self, namespace: str, body: dict) -> None:
        self.calls.append("create secret")
        if not self.namespace_exists:
            raise client.ApiException(status=404, reason="Not Found")
        self.secrets[(namespace, body["metadata"]["name"])] = body

    def create_namespace(self, body: dict) -> None:
        self.calls.append("create namespace")
        raise client.ApiException(status=403, reason="Forbidden")


def test_the_first_component_creates_the_ca_without_touching_namespaces() -> None:
    core = RestrictedCore()
    ca = ensure_ca(core)  # type: ignore[arg-type]
    assert core.calls == ["get secret", "create secret"]
    stored = core.secrets[("kubevirt", "kubevirt-py-ca")]
    assert stored["type"] == "kubernetes.io/tls"
    assert base64.b64decode(stored["data"]["tls.crt"]) == ca.cert_pem
    assert ensure_ca(core).cert_pem == ca.cert_pem  # type: ignore[arg-type]
    assert core.calls[2:] == ["get secret"]


def test_a_missing_namespace_is_created_only_when_the_api_server_says_so() -> None:
    core = RestrictedCore(namespace_exists=False)
    with pytest.raises(client.ApiException) as raised:
        ensure_ca(core)  # type: ignore[arg-type]
    # Without the right to create it, the answer is the API server's refusal, not a hang.
    assert raised.value.status == 403
    assert core.calls == ["get secret", "create secret", "create namespace"]
