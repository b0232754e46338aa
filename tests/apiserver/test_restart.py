"""The API server and etcd restart with every object and the revision counter intact."""

from __future__ import annotations

from kubernetes import client


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
