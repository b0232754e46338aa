"""In-cluster credentials: the default ServiceAccount, ServiceAccount admission of pods
(kube-api-access volume) and the kube-root-ca.crt ConfigMap, against the real API server."""

from __future__ import annotations

import socket
import ssl
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from kubernetes import client
from kubernetes.config.incluster_config import InClusterConfigLoader

from local_cluster.apiserver.http import bearer_token_matches
from local_cluster.apiserver.service_accounts import (TOKEN_MOUNT_PATH, TOKEN_VOLUME_PREFIX, mount_token_volume,
                                                      token_volume)
from tests.apiserver.conftest import raw
from tests.wait import eventually

Obj = dict[str, Any]


def _pod(name: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


def _create_pod(api: client.ApiClient, namespace: str, pod: Obj) -> tuple[int, Obj]:
    return raw(api, "POST", f"/api/v1/namespaces/{namespace}/pods", pod)


def _create_account(api: client.ApiClient, namespace: str, name: str, **fields: Any) -> None:
    status, body = raw(api, "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts",
                       {"metadata": {"name": name}, **fields})
    assert status == 201, body


def _get(api: client.ApiClient, path: str) -> Obj | None:
    status, body = raw(api, "GET", path)
    return body if status == 200 else None


def _token_volumes(pod: Obj) -> list[Obj]:
    return [v for v in pod["spec"].get("volumes") or [] if v["name"].startswith(TOKEN_VOLUME_PREFIX)]


def _root_ca(api: client.ApiClient, namespace: str) -> str | None:
    config_map = _get(api, f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt")
    return ((config_map or {}).get("data") or {}).get("ca.crt")


def _server_address(api: client.ApiClient) -> tuple[str, int]:
    url = urlparse(api.configuration.host)
    assert url.hostname and url.port
    return url.hostname, url.port


# --- the default ServiceAccount ---------------------------------------------------------

def test_default_service_account_exists_in_a_new_namespace(api, namespace):
    account = eventually(lambda: _get(api, f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
                         what="default ServiceAccount")
    assert account["metadata"]["namespace"] == namespace


@pytest.mark.parametrize("existing", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_default_service_account_exists_in_the_initial_namespaces(api, existing):
    eventually(lambda: _get(api, f"/api/v1/namespaces/{existing}/serviceaccounts/default"),
               what=f"default ServiceAccount in {existing}")


def test_deleted_default_service_account_comes_back(api, namespace):
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    first = eventually(lambda: _get(api, path), what="default ServiceAccount")
    status, _ = raw(api, "DELETE", path)
    assert status == 200
    again = eventually(lambda: (a := _get(api, path)) and a["metadata"]["uid"] != first["metadata"]["uid"] and a,
                       what="recreated default ServiceAccount")
    assert again["metadata"]["name"] == "default"


# --- admission of pods ----------------------------------------------------------------------

def test_pod_right_after_its_namespace_runs_as_default_with_the_api_access_volume(api):
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    try:
        pod = {"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "main", "image": "busybox",
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}]}}
        status, created = _create_pod(api, name, pod)
        assert status == 201, created
    finally:
        client.CoreV1Api(api).delete_namespace(name)
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default"
    assert spec["serviceAccount"] == "default"
    [volume] = _token_volumes(created)
    suffix = volume["name"].removeprefix(TOKEN_VOLUME_PREFIX)
    assert len(suffix) == 5 and suffix.isalnum()
    assert volume == token_volume(volume["name"])
    assert volume["projected"]["defaultMode"] == 420
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1] == {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    assert sources[2] == {"downwardAPI": {"items": [
        {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    expected_mount = {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
    assert spec["initContainers"][0]["volumeMounts"] == [expected_mount]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}, expected_mount]
    assert [v["name"] for v in spec["volumes"]] == ["scratch", volume["name"]]


def test_a_container_with_its_own_mount_at_the_token_path_keeps_it(api, namespace):
    own = {"name": "mine", "mountPath": TOKEN_MOUNT_PATH}
    pod = _pod("own", containers=[{"name": "a", "image": "busybox", "volumeMounts": [own]},
                                  {"name": "b", "image": "busybox"}],
               volumes=[{"name": "mine", "emptyDir": {}}])
    status, created = _create_pod(api, namespace, pod)
    assert status == 201, created
    [volume] = _token_volumes(created)
    assert created["spec"]["containers"][0]["volumeMounts"] == [own]
    assert created["spec"]["containers"][1]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]


def test_every_container_with_its_own_mount_means_no_token_volume(api, namespace):
    pod = _pod("all-own", containers=[{"name": "a", "image": "busybox",
                                       "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}],
               volumes=[{"name": "mine", "emptyDir": {}}])
    status, created = _create_pod(api, namespace, pod)
    assert status == 201, created
    assert _token_volumes(created) == []


def test_automount_false_on_the_pod_is_honoured(api, namespace):
    status, created = _create_pod(api, namespace, _pod("no-token", automountServiceAccountToken=False))
    assert status == 201, created
    assert created["spec"]["serviceAccountName"] == "default"
    assert _token_volumes(created) == []
    assert "volumeMounts" not in created["spec"]["containers"][0]


def test_automount_false_on_the_account_is_honoured_unless_the_pod_says_otherwise(api, namespace):
    _create_account(api, namespace, "quiet", automountServiceAccountToken=False)
    status, quiet = _create_pod(api, namespace, _pod("quiet", serviceAccountName="quiet"))
    assert status == 201, quiet
    assert _token_volumes(quiet) == []
    status, loud = _create_pod(api, namespace, _pod("loud", serviceAccountName="quiet",
                                                    automountServiceAccountToken=True))
    assert status == 201, loud
    assert len(_token_volumes(loud)) == 1


def test_the_deprecated_service_account_field_names_the_account(api, namespace):
    _create_account(api, namespace, "builder", imagePullSecrets=[{"name": "registry"}])
    status, created = _create_pod(api, namespace, _pod("old-style", serviceAccount="builder"))
    assert status == 201, created
    assert created["spec"]["serviceAccountName"] == "builder"
    assert created["spec"]["serviceAccount"] == "builder"
    # As upstream, a pod without pull secrets of its own gets its account's.
    assert created["spec"]["imagePullSecrets"] == [{"name": "registry"}]


def test_a_missing_service_account_is_refused(api, namespace):
    status, body = _create_pod(api, namespace, _pod("orphan", serviceAccountName="nobody"))
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == (f'pods "orphan" is forbidden: error looking up service account {namespace}/nobody: '
                               f'serviceaccount "nobody" not found')
    assert _get(api, f"/api/v1/namespaces/{namespace}/pods/orphan") is None


def test_dry_run_applies_the_same_admission(api, namespace):
    status, created = raw(api, "POST", f"/api/v1/namespaces/{namespace}/pods", _pod("dry"),
                          query=[("dryRun", "All")])
    assert status == 201, created
    assert len(_token_volumes(created)) == 1


def test_an_existing_api_access_volume_is_reused():
    spec: Obj = {"containers": [{"name": "a", "image": "x"}],
                 "volumes": [token_volume(f"{TOKEN_VOLUME_PREFIX}abcde")]}
    mount_token_volume(spec)
    assert [v["name"] for v in spec["volumes"]] == [f"{TOKEN_VOLUME_PREFIX}abcde"]
    assert spec["containers"][0]["volumeMounts"][0]["name"] == f"{TOKEN_VOLUME_PREFIX}abcde"


# --- kube-root-ca.crt -------------------------------------------------------------------------

def _verifies_server(ca_pem: str, host: str, port: int) -> bool:
    context = ssl.create_default_context(cadata=ca_pem)
    with socket.create_connection((host, port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return tls.version() is not None


@pytest.mark.parametrize("existing", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_root_ca_is_published_in_the_initial_namespaces(api, existing):
    eventually(lambda: _root_ca(api, existing), what=f"kube-root-ca.crt in {existing}")


def test_root_ca_verifies_the_api_server(api, namespace):
    ca_pem = eventually(lambda: _root_ca(api, namespace), what="kube-root-ca.crt")
    host, port = _server_address(api)
    assert _verifies_server(ca_pem, host, port)
    # The names in-cluster clients use must be covered too (the kubernetes Service's DNS name).
    assert _verifies_server(ca_pem, "localhost", port)


def test_root_ca_comes_back_after_deletion_and_after_tampering(api, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt"
    original = eventually(lambda: _root_ca(api, namespace), what="kube-root-ca.crt")
    status, _ = raw(api, "DELETE", path)
    assert status == 200
    assert eventually(lambda: _root_ca(api, namespace), what="recreated kube-root-ca.crt") == original
    status, _ = raw(api, "PATCH", path, {"data": {"ca.crt": "not a certificate"}},
                    headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200
    eventually(lambda: _root_ca(api, namespace) == original, what="restored kube-root-ca.crt")


# --- what a pod's client does with it ---------------------------------------------------------

def test_in_cluster_config_from_the_projected_files_reaches_the_api_server(api, namespace, tmp_path: Path):
    """The files the kubelet writes into kube-api-access (token, ca.crt, namespace) and the
    KUBERNETES_SERVICE_* it sets are enough for load_incluster_config over verified TLS."""
    ca_pem = eventually(lambda: _root_ca(api, namespace), what="kube-root-ca.crt")
    token = (api.configuration.auth_settings().get("BearerToken") or {})["value"].removeprefix("Bearer ")
    (tmp_path / "token").write_text(token)
    (tmp_path / "ca.crt").write_text(ca_pem)
    host, port = _server_address(api)
    configuration = client.Configuration()
    InClusterConfigLoader(str(tmp_path / "token"), str(tmp_path / "ca.crt"),
                          environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port)},
                          ).load_and_set(configuration)
    assert configuration.verify_ssl
    with client.ApiClient(configuration) as in_cluster:
        accounts = client.CoreV1Api(in_cluster).list_namespaced_service_account(namespace)
    assert "default" in [a.metadata.name for a in accounts.items]


@pytest.mark.parametrize("header, accepted", [
    ("Bearer s3cret", True), ("bearer s3cret", True), ("BEARER  s3cret ", True),
    ("Bearer wrong", False), ("Basic s3cret", False), ("Bearer ", False), ("", False), ("s3cret", False),
])
def test_the_bearer_scheme_is_case_insensitive(header, accepted):
    assert bearer_token_matches(header, "s3cret") is accepted
