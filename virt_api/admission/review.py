"""The AdmissionReview envelope: what kube-apiserver sends and what it expects back.

A body that is not an AdmissionReview we can answer (no uid to echo, no request, an
object of the wrong type for the operation) is a MalformedReview, which the handler
turns into HTTP 400. Everything about the *object* inside a well-formed review is
answered inside a review response instead, as kube-apiserver expects.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from kube_schema.errors import FieldError, invalid_status
from kubevirt_api.groups import GROUP
from virt_api.admission.shape import as_obj, as_str

Obj = dict[str, Any]

REVIEW_KIND = "AdmissionReview"
# v1 is what current API servers send; v1beta1 is still accepted because webhook
# configurations may list it, and the answer must carry the version that was asked.
REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
# Kubernetes objects are a dozen levels deep; anything far deeper is hostile or broken,
# and refusing it early keeps every recursive step (copy, diff) far from the stack limit.
MAX_DEPTH = 64


class MalformedReview(ValueError):
    """The body cannot be answered as an AdmissionReview; the message says why."""


@dataclass(frozen=True)
class ReviewRequest:
    api_version: str
    uid: str
    operation: str
    namespace: str
    name: str
    resource: str          # request.resource.resource, "" when not given
    obj: Obj | None         # request.object
    old: Obj | None         # request.oldObject
    username: str
    groups: tuple[str, ...]
    sub_resource: str = ""  # request.subResource ("eviction", "status", ...)
    dry_run: bool = False   # request.dryRun: side effects must not happen


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Iterative, so a hostile body cannot exhaust the stack while being measured."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def decode_body(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except RecursionError:
        raise MalformedReview(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedReview(f"the body is not JSON: {error}") from None
    if _depth_exceeds(body, MAX_DEPTH):
        raise MalformedReview(f"the body nests deeper than {MAX_DEPTH} levels")
    return body


def _object_field(request: Obj, key: str, required: bool) -> Obj | None:
    value = request.get(key)
    if value is None:
        if required:
            raise MalformedReview(f"request.{key}: required for this operation")
        return None
    if not isinstance(value, dict):
        raise MalformedReview(f"request.{key}: must be a JSON object, got {type(value).__name__}")
    return value


def parse_review(body: Any) -> ReviewRequest:
    if not isinstance(body, dict):
        raise MalformedReview(f"expected an AdmissionReview object, got {type(body).__name__}")
    if body.get("kind") != REVIEW_KIND:
        raise MalformedReview(f"kind: expected {REVIEW_KIND!r}, got {body.get('kind')!r}")
    api_version = body.get("apiVersion")
    if api_version not in REVIEW_VERSIONS:
        raise MalformedReview(f"apiVersion: expected one of {', '.join(REVIEW_VERSIONS)}, got {api_version!r}")
    request = body.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("request: required, and must be an object")
    uid = as_str(request.get("uid"))
    if not uid:
        raise MalformedReview("request.uid: required, and must be a non-empty string")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation: expected one of {', '.join(OPERATIONS)}, got {operation!r}")
    user = as_obj(request.get("userInfo"))
    groups = user.get("groups")
    return ReviewRequest(
        api_version=api_version, uid=uid, operation=operation,
        namespace=as_str(request.get("namespace")) or "",
        name=as_str(request.get("name")) or "",
        resource=as_str(as_obj(request.get("resource")).get("resource")) or "",
        obj=_object_field(request, "object", required=operation in ("CREATE", "UPDATE")),
        old=_object_field(request, "oldObject", required=operation == "UPDATE"),
        username=as_str(user.get("username")) or "",
        groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
        sub_resource=as_str(request.get("subResource")) or "",
        dry_run=request.get("dryRun") is True,
    )


# --- answers: the "response" part; review_response() wraps it ---------------------------

def allowed(patch: list[Obj] | None = None, warnings: list[str] | None = None) -> Obj:
    response: Obj = {"allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    if warnings:
        response["warnings"] = warnings
    return response


def invalid(kind: str, name: str, errors: list[FieldError]) -> Obj:
    """422 Invalid, every offending field in status.details.causes (as kube-apiserver's own)."""
    return {"allowed": False, "status": invalid_status(GROUP, kind, name, errors)}


def refused(code: int, reason: str, message: str) -> Obj:
    """A denial that is about the request rather than a field (wrong resource, lookups failing)."""
    return {"allowed": False, "status": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                         "code": code, "reason": reason, "message": message}}


def review_response(request: ReviewRequest, response: Obj) -> Obj:
    return {"apiVersion": request.api_version, "kind": REVIEW_KIND, "response": {"uid": request.uid, **response}}


def bad_request_status(message: str) -> Obj:
    """The body of an HTTP 400: a Status, so a human and kube-apiserver's logs both read it."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 400,
            "reason": "BadRequest", "message": f"malformed AdmissionReview: {message}"}
