"""The AdmissionReview envelope over HTTP: uid and version echoed, malformed bodies
answered with 400 and a reason, a misrouted review refused inside the review."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.virt_api.test_admission_support import Served, body
from virt_api.admission import paths

VMI = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": "v"},
       "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}}}}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = Served()
    yield server
    server.close()


def test_every_upstream_path_is_served(served: Served) -> None:
    assert len(paths.ALL) == 10
    deletion = body(None, operation="DELETE", old=VMI)
    del deletion["request"]["resource"]  # optional: only checked when given
    for path in paths.ALL:
        status, review = served.post(path, deletion)
        assert status == 200 and review["response"]["allowed"] is True, path


def test_uid_and_version_are_echoed(served: Served) -> None:
    review = body(VMI, uid="abc-123")
    review["apiVersion"] = "admission.k8s.io/v1beta1"
    status, answer = served.post(paths.VMI_VALIDATE_CREATE, review)
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == "abc-123"


def test_a_mutator_answers_with_a_json_patch(served: Served) -> None:
    _, answer = served.post(paths.VMI_MUTATE, body(VMI))
    assert answer["response"]["allowed"] and answer["response"]["patchType"] == "JSONPatch"


def _without(key: str) -> dict[str, Any]:
    review = body(VMI)
    del review["request"][key]
    return review


MALFORMED = [
    ("not JSON", b"{nope", "not JSON"),
    ("not UTF-8", b"\xff\xfe\x00", "not JSON"),
    ("a list", [1, 2], "expected an AdmissionReview object"),
    ("wrong kind", {**body(VMI), "kind": "Pod"}, "kind"),
    ("wrong version", {**body(VMI), "apiVersion": "v1"}, "apiVersion"),
    ("no request", {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request"),
    ("no uid", _without("uid"), "request.uid"),
    ("unknown operation", {**body(VMI), "request": {**body(VMI)["request"], "operation": "PATCH"}},
     "request.operation"),
    ("create without object", _without("object"), "request.object"),
    ("object not an object", {**body(VMI), "request": {**body(VMI)["request"], "object": "vmi"}}, "request.object"),
    ("nested too deeply", b"[" * 5000 + b"]" * 5000, "deeper"),
]


@pytest.mark.parametrize("data,expected", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_are_400_with_a_reason(served: Served, data: Any, expected: str) -> None:
    status, answer = served.post(paths.VMI_VALIDATE_CREATE, data)
    assert status == 400
    assert answer["kind"] == "Status" and answer["code"] == 400 and expected in answer["message"]
    assert "Traceback" not in answer["message"]


def test_a_review_for_another_resource_is_refused_inside_the_review(served: Served) -> None:
    status, answer = served.post(paths.VM_VALIDATE, body(VMI, resource="virtualmachineinstances"))
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "admits virtualmachines, not virtualmachineinstances" in response["status"]["message"]


def test_only_post(served: Served) -> None:
    async def get() -> int:
        async with served.client.get(paths.VMI_MUTATE) as reply:
            return reply.status
    assert served.loop.run_until_complete(get()) == 405
