"""Kubernetes REST client metrics: requests through an instrumented ApiClient (generated
methods, raw listers and watches alike) move upstream's kubevirt_rest_client_* series by
code, verb and resource; two collectors on one client both count; releasing the last one
leaves the client as it was."""

from __future__ import annotations

from kubernetes import client, watch
from prometheus_client import CollectorRegistry

from kube_client.controller.resource import CONFIG_MAPS
from kube_client.rawapi import call
from kube_client.rest_metrics import RestClientMetrics, describe_request


def _registry(metrics: RestClientMetrics) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(metrics)
    return registry


def _requests(registry: CollectorRegistry, **labels: str) -> float:
    return sum(sample.value for family in registry.collect() for sample in family.samples
               if sample.name == "kubevirt_rest_client_requests_total"
               and all(sample.labels.get(key) == value for key, value in labels.items()))


def test_requests_are_counted_by_code_verb_and_resource(api: client.ApiClient, namespace: str) -> None:
    metrics = RestClientMetrics("kubevirt")
    registry = _registry(metrics)
    core = client.CoreV1Api(api)
    metrics.instrument(api)
    try:
        call(core.create_namespaced_config_map, namespace, {"metadata": {"name": "one"}})
        call(core.read_namespaced_config_map, "one", namespace)
        try:
            call(core.read_namespaced_config_map, "missing", namespace)
        except client.ApiException as error:
            assert error.status == 404
        CONFIG_MAPS.lister(api, namespace)(_preload_content=False).release_conn()
        for _ in watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=1):
            break
    finally:
        metrics.release(api)
    configmaps = {"resource": "configmaps", "method": "GET"}
    assert _requests(registry, code="201", verb="CREATE", resource="configmaps", method="POST") == 1
    assert _requests(registry, code="200", verb="GET", **configmaps) == 1
    assert _requests(registry, code="404", verb="GET", **configmaps) == 1
    assert _requests(registry, code="200", verb="LIST", **configmaps) == 1
    assert _requests(registry, code="200", verb="WATCH", **configmaps) == 1
    host = api.configuration.host.split("://", 1)[1]
    assert _requests(registry, host=host) == 5
    template = f"{api.configuration.host}/api/v1/namespaces/{{namespace}}/configmaps/{{name}}"
    assert registry.get_sample_value("kubevirt_rest_client_request_latency_seconds_count",
                                     {"verb": "GET", "url": template}) == 2


def test_two_collectors_share_a_client_and_release_restores_it(api: client.ApiClient) -> None:
    rest = api.rest_client
    first, second = RestClientMetrics("kubevirt"), RestClientMetrics("kubevirt")
    first.instrument(api)
    second.instrument(api)
    second.instrument(api)  # twice is once
    try:
        call(client.CoreV1Api(api).list_namespace)
        second.release(api)
        call(client.CoreV1Api(api).list_namespace)
    finally:
        first.release(api)
    assert "request" not in vars(rest)  # the class's method again
    call(client.CoreV1Api(api).list_namespace)
    assert _requests(_registry(first), verb="LIST", resource="namespaces") == 2
    assert _requests(_registry(second), verb="LIST", resource="namespaces") == 1


def test_a_request_that_gets_no_response_is_an_error() -> None:
    api = client.ApiClient(client.Configuration(host="https://127.0.0.1:1"))
    metrics = RestClientMetrics("kubevirt")
    metrics.instrument(api)
    try:
        call(client.CoreV1Api(api).list_node, _request_timeout=2)
    except Exception:
        pass
    finally:
        metrics.release(api)
        api.close()
    assert _requests(_registry(metrics), code="<error>", verb="LIST", resource="nodes") == 1


def test_urls_become_templates_and_verbs() -> None:
    host = "https://10.0.0.1:6443"
    cases = {
        ("GET", "/api/v1/namespaces/ns/pods?watch=true"): ("pods", "WATCH", "/api/v1/namespaces/{namespace}/pods"),
        ("GET", "/api/v1/watch/namespaces/ns/pods"): ("pods", "WATCH", "/api/v1/watch/namespaces/{namespace}/pods"),
        ("GET", "/api/v1/nodes"): ("nodes", "LIST", "/api/v1/nodes"),
        ("PATCH", "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/v/status"):
            ("virtualmachineinstances", "PATCH",
             "/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}/status"),
        ("PUT", "/api/v1/namespaces/ns/finalize"): ("namespaces", "UPDATE", "/api/v1/namespaces/{name}/finalize"),
        ("DELETE", "/apis/coordination.k8s.io/v1/namespaces/kubevirt/leases/l"):
            ("leases", "DELETE", "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"),
        ("GET", "/version"): ("none", "none", "/version"),
        ("GET", "/apis/kubevirt.io/v1"): ("none", "none", "/apis/kubevirt.io/v1"),
    }
    for (method, path), (resource, verb, template) in cases.items():
        assert describe_request(method, host + path) == ("10.0.0.1:6443", resource, verb, host + template), path
