"""The API server and etcd restart with every object and the revision counter intact, and
the API server puts back what it publishes about itself."""

from __future__ import annotations

from kubernetes import client

from kube_client import front_proxy


def test_objects_survive_a_restart(control_plane, namespace) -> None:
    api = control_plane.api_client()
    core = client.CoreV1Api(api)
    secret = core.create_namespaced_secret(namespace, {"metadata": {"name": "keep"}, "stringData": {"k": "v"}})
    assert secret.data == {"k": "dg=="}
    before = core.read_namespaced_secret("keep", namespace)
    control_plane.restart_apiserver()
    api = control_plane.api_client()  # the kubeconfig may name a new port
    core = client.CoreV1Api(api)
    after = core.read_namespaced_secret("keep", namespace)
    assert after.metadata.uid == before.metadata.uid and after.data == {"k": "dg=="}
    assert after.metadata.resource_version == before.metadata.resource_version
    newer = core.create_namespaced_config_map(namespace, {"metadata": {"name": "after"}})
    assert int(newer.metadata.resource_version) > int(before.metadata.resource_version)


def test_the_front_proxy_trust_is_published_and_put_back(control_plane) -> None:
    core = client.CoreV1Api(control_plane.api_client())
    published = core.read_namespaced_config_map(front_proxy.CONFIG_MAP, front_proxy.NAMESPACE)
    assert front_proxy.trust_from(published.data).allowed_names == (front_proxy.CLIENT_NAME,)
    core.patch_namespaced_config_map(front_proxy.CONFIG_MAP, front_proxy.NAMESPACE,
                                     {"data": {"requestheader-allowed-names": '["intruder"]'}})
    control_plane.restart_apiserver()
    core = client.CoreV1Api(control_plane.api_client())
    restored = core.read_namespaced_config_map(front_proxy.CONFIG_MAP, front_proxy.NAMESPACE)
    assert restored.data == published.data  # the same front-proxy CA: it is kept with the others
