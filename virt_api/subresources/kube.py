"""The API calls the subresources make, off the event loop (the official client blocks),
with the API server's errors turned into the Status a subresource answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube_client.rawapi import REQUEST_TIMEOUT, call
from kubevirt_api.groups import GROUP, MIGRATION, VERSION, VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE
from kubevirt_api.labels import APP_LABEL, CREATED_BY_LABEL, VIRT_LAUNCHER
from virt_api.subresources.status import VM, VMI, StatusError, conflict, internal, not_found, passed_through

Obj = dict[str, Any]
JSON_PATCH = "application/json-patch+json"
DRY_RUN = "All"


def _status_body(error: ApiException) -> Obj | None:
    try:
        body = json.loads(error.body or b"")
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("kind") == "Status" else None


def _failed(error: Exception, what: str) -> StatusError:
    """4xx answers are the caller's business and pass through; the rest is ours."""
    if isinstance(error, ApiException) and 400 <= (error.status or 0) < 500:
        body = _status_body(error)
        if body is not None:
            return passed_through(body)
    return internal(f"unable to {what}: {error}")


def _test_failed(error: Exception) -> bool:
    """A JSON patch whose test op no longer holds: someone changed the object first."""
    if not isinstance(error, ApiException) or error.status not in (409, 422, 500):
        return False
    message = str((_status_body(error) or {}).get("message", ""))
    return error.status == 409 or "test" in message


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        return await asyncio.to_thread(call, method, *args, **kwargs)

    async def _get(self, plural: str, resource: str, namespace: str, name: str) -> Obj:
        try:
            return await self._call(self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural,
                                    name)
        except ApiException as error:
            if error.status == 404:
                raise not_found(resource, name) from None
            raise _failed(error, f"retrieve {resource} [{name}]") from None

    async def vm(self, namespace: str, name: str) -> Obj:
        return await self._get(VIRTUAL_MACHINE.plural, VM, namespace, name)

    async def vmi(self, namespace: str, name: str) -> Obj:
        return await self._get(VIRTUAL_MACHINE_INSTANCE.plural, VMI, namespace, name)

    async def vmi_or_none(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.vmi(namespace, name)
        except StatusError as error:
            if error.code == 404:
                return None
            raise

    async def _patch(self, method: Callable[..., Any], plural: str, resource: str, namespace: str, name: str,
                     operations: list[Obj], dry_run: bool) -> None:
        try:
            await self._call(method, GROUP, VERSION, namespace, plural, name, operations,
                             dry_run=DRY_RUN if dry_run else None, _content_type=JSON_PATCH)
        except ApiException as error:
            if _test_failed(error):
                message = (_status_body(error) or {}).get("message") or str(error)
                raise conflict(resource, name, message) from None
            raise _failed(error, f"patch {resource} [{name}]") from None

    async def patch_vm(self, namespace: str, name: str, operations: list[Obj], dry_run: bool) -> None:
        await self._patch(self._custom.patch_namespaced_custom_object, VIRTUAL_MACHINE.plural, VM, namespace, name,
                          operations, dry_run)

    async def patch_vm_status(self, namespace: str, name: str, operations: list[Obj], dry_run: bool) -> None:
        await self._patch(self._custom.patch_namespaced_custom_object_status, VIRTUAL_MACHINE.plural, VM, namespace,
                          name, operations, dry_run)

    async def patch_vmi(self, namespace: str, name: str, operations: list[Obj], dry_run: bool) -> None:
        await self._patch(self._custom.patch_namespaced_custom_object, VIRTUAL_MACHINE_INSTANCE.plural, VMI,
                          namespace, name, operations, dry_run)

    async def create_migration(self, namespace: str, body: Obj, dry_run: bool) -> Obj:
        try:
            return await self._call(self._custom.create_namespaced_custom_object, GROUP, VERSION, namespace,
                                    MIGRATION.plural, body, dry_run=DRY_RUN if dry_run else None)
        except ApiException as error:
            raise _failed(error, "create the migration") from None

    async def pods(self, namespace: str, labels: str, fields: str = "") -> list[Obj]:
        try:
            found = await self._call(self._core.list_namespaced_pod, namespace, label_selector=labels,
                                     field_selector=fields or None)
        except ApiException as error:
            raise _failed(error, f"list pods in {namespace}") from None
        return list(found.get("items") or [])

    async def running_launcher_pods(self, namespace: str, vmi_uid: str) -> list[Obj]:
        return await self.pods(namespace, f"{APP_LABEL}={VIRT_LAUNCHER},{CREATED_BY_LABEL}={vmi_uid}",
                               "status.phase=Running")

    async def delete_pod(self, namespace: str, name: str, grace_seconds: int) -> None:
        try:
            await self._call(self._core.delete_namespaced_pod, namespace=namespace, name=name,
                             grace_period_seconds=grace_seconds)
        except ApiException as error:
            if error.status != 404:
                raise _failed(error, f"delete pod {namespace}/{name}") from None

    async def healthy(self) -> None:
        """The API server's /version, as upstream's healthz checks its connection: any
        authenticated identity may read it, whatever virt-api's RBAC."""
        await asyncio.to_thread(self._read_version)

    def _read_version(self) -> None:
        # Not VersionApi.get_code: it asks for "/version/", which not every server routes.
        method, url, headers, body, params = self._api.param_serialize(
            "GET", "/version", header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self._api.call_api(method, url, headers, body, params, _request_timeout=REQUEST_TIMEOUT)
        try:
            if response.status != 200:
                raise RuntimeError(f"GET /version answered {response.status}")
            response.read()
        finally:
            response.response.release_conn()
