"""Errors as Kubernetes Status objects, worded as upstream's virt-api words them
(k8s.io/apimachinery's NewNotFound, NewConflict, NewBadRequest, ...)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubevirt_api.groups import GROUP

Obj = dict[str, Any]

VM = "virtualmachine"
VMI = "virtualmachineinstance"

# Upstream's wording, which clients (virtctl, scripts) match on.
VM_NOT_RUNNING = "VM is not running"
VMI_NOT_RUNNING = "VMI is not running"


class StatusError(Exception):
    """Raised anywhere in a request; the route answers it as a Status."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> Obj:
        status: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            status["details"] = self.details
        return status

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.code)


def _details(resource: str, name: str) -> Obj:
    return {"name": name, "group": GROUP, "kind": resource}


def not_found(resource: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{resource}.{GROUP} "{name}" not found', _details(resource, name))


def conflict(resource: str, name: str, message: str) -> StatusError:
    return StatusError(409, "Conflict", f'Operation cannot be fulfilled on {resource}.{GROUP} "{name}": {message}',
                       _details(resource, name))


def forbidden(resource: str, name: str, message: str) -> StatusError:
    return StatusError(403, "Forbidden", f'{resource}.{GROUP} "{name}" is forbidden: {message}',
                       _details(resource, name))


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}",
                       {"causes": [{"message": message}]})


def unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def route_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def passed_through(body: Obj) -> StatusError:
    """A Status the API server answered, handed on unchanged (admission denials, ...)."""
    return StatusError(int(body.get("code") or 500), str(body.get("reason") or "InternalError"),
                       str(body.get("message") or ""), body.get("details"))
