"""Admission webhooks called as kube-apiserver calls them: AdmissionReview v1, failurePolicy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from kubernetes import client

from tests.apiserver.backends import HttpsBackend, admission_response, run_pod_behind_service
from tests.apiserver.conftest import raw

SERVICE = "hooks"


@pytest.fixture(scope="module")
def hooks(api) -> Iterator[tuple[HttpsBackend, list[dict]]]:
    seen: list[dict] = []

    async def mutate(request: web.Request) -> web.Response:
        review = await request.json()
        seen.append(review["request"])
        patch = [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
        return web.json_response(admission_response(review, patch=patch))

    async def validate(request: web.Request) -> web.Response:
        review = await request.json()
        seen.append(review["request"])
        data = (review["request"].get("object") or {}).get("data") or {}
        if "bad" in data:
            return web.json_response(admission_response(review, allowed=False, status={
                "code": 422, "reason": "Invalid", "message": "data.bad: this key is not allowed"}))
        return web.json_response(admission_response(review))

    def routes(app: web.Application) -> None:
        app.router.add_post("/mutate", mutate)
        app.router.add_post("/validate", validate)

    backend = HttpsBackend(routes, names=(f"{SERVICE}.hooked.svc",))
    yield backend, seen
    backend.close()


def _configuration(kind: str, name: str, client_config: dict, namespace: str, failure: str = "Fail") -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": [{"name": f"{name}.example.com", "clientConfig": client_config,
                          "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                     "resources": ["configmaps"]}],
                          "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                          "failurePolicy": failure, "sideEffects": "None", "admissionReviewVersions": ["v1"],
                          "timeoutSeconds": 5}]}


def _register(api, config: dict) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    if config["kind"] == "MutatingWebhookConfiguration":
        admission.create_mutating_webhook_configuration(config)
    else:
        admission.create_validating_webhook_configuration(config)


def _unregister(api, kind: str, name: str) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    if kind == "MutatingWebhookConfiguration":
        admission.delete_mutating_webhook_configuration(name)
    else:
        admission.delete_validating_webhook_configuration(name)


def test_mutating_and_validating_webhooks_by_url(api, namespace, hooks) -> None:
    backend, seen = hooks
    base = f"https://127.0.0.1:{backend.port}"
    _register(api, _configuration("MutatingWebhookConfiguration", "mutator",
                                  {"url": f"{base}/mutate", "caBundle": backend.ca_bundle}, namespace))
    _register(api, _configuration("ValidatingWebhookConfiguration", "validator",
                                  {"url": f"{base}/validate", "caBundle": backend.ca_bundle}, namespace))
    try:
        core = client.CoreV1Api(api)
        created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "ok"}, "data": {"a": "1"}})
        assert created.metadata.labels == {"mutated": "yes"}
        request = next(r for r in seen if r["operation"] == "CREATE" and r["name"] == "ok")
        assert request["namespace"] == namespace and request["resource"]["resource"] == "configmaps"
        assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        with pytest.raises(client.ApiException) as denied:
            core.create_namespaced_config_map(namespace, {"metadata": {"name": "nope"}, "data": {"bad": "1"}})
        assert denied.value.status == 422
        assert 'admission webhook \\"validator.example.com\\" denied the request: data.bad: this key is not ' \
               'allowed' in denied.value.body
        # Other namespaces are outside the namespaceSelector.
        other = core.create_namespaced_config_map("default", {"metadata": {"generateName": "free-"},
                                                              "data": {"bad": "1"}})
        assert not other.metadata.labels
        core.delete_namespaced_config_map(other.metadata.name, "default")
    finally:
        _unregister(api, "MutatingWebhookConfiguration", "mutator")
        _unregister(api, "ValidatingWebhookConfiguration", "validator")


def test_webhook_through_a_service(api, hooks) -> None:
    backend, _ = hooks
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "hooked"}})
    try:
        run_pod_behind_service(core, "hooked", SERVICE, backend.port)
        _register(api, _configuration("ValidatingWebhookConfiguration", "by-service", {
            "service": {"namespace": "hooked", "name": SERVICE, "path": "/validate", "port": 443},
            "caBundle": backend.ca_bundle}, "hooked"))
        with pytest.raises(client.ApiException) as denied:
            core.create_namespaced_config_map("hooked", {"metadata": {"name": "x"}, "data": {"bad": "1"}})
        assert denied.value.status == 422 and "by-service.example.com" in denied.value.body
        assert core.create_namespaced_config_map("hooked", {"metadata": {"name": "y"}}).metadata.name == "y"
    finally:
        _unregister(api, "ValidatingWebhookConfiguration", "by-service")
        core.delete_namespace("hooked")


@pytest.mark.parametrize("policy, expected", [("Fail", 500), ("Ignore", 201)])
def test_unreachable_webhook_honours_failure_policy(api, namespace, policy: str, expected: int) -> None:
    _register(api, _configuration("ValidatingWebhookConfiguration", "down", {"url": "https://127.0.0.1:1/x"},
                                  namespace, failure=policy))
    try:
        status, body = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
                           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"p-{policy.lower()}"}})
        assert status == expected
        if expected == 500:
            assert body["reason"] == "InternalError" and 'failed calling webhook "down.example.com"' in body["message"]
    finally:
        _unregister(api, "ValidatingWebhookConfiguration", "down")
