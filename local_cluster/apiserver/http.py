"""HTTP: route Kubernetes API requests to the object store, discovery and the aggregator."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
from typing import Any

import yaml
from aiohttp import web

from local_cluster.apiserver import discovery, errors, openapi, patch, tables
from local_cluster.apiserver.context import RequestContext
from local_cluster.apiserver.requests import RequestInfo, parse_api_path
from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.apiserver.selectors import parse_field_selector, parse_label_selector
from local_cluster.apiserver.watch import watch_events
from local_cluster.storage.interface import StoreUnavailable

Obj = dict[str, Any]
log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request size limit
_PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}


def json_response(body: Obj, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {"Cache-Control": "no-cache, private"}
    response = web.Response(text=json.dumps(body, separators=(",", ":")), status=status,
                            content_type="application/json", headers=headers)
    for warning in warnings or []:
        response.headers.add("Warning", f'299 - {json.dumps(warning)}')
    return response


def error_response(error: errors.ApiError) -> web.Response:
    return json_response(error.status(), error.code)


class Handlers:
    """Bound to one APIServer; see server.py for what ``server`` provides."""

    def __init__(self, server: Any) -> None:
        self.server = server

    # --- middleware ---------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if request.path not in _PUBLIC_PATHS:
                self._authenticate(request)
            return await handler(request)
        except errors.ApiError as error:
            return error_response(error)
        except StoreUnavailable as error:
            return error_response(errors.service_unavailable(f"storage is unavailable: {error}"))
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as error:  # every other failure is still a Status, never a bare 500 page
            log.exception("request %s %s failed", request.method, request.path_qs)
            return error_response(errors.internal(f"{type(error).__name__}: {error}"))

    def _authenticate(self, request: web.Request) -> None:
        if not bearer_token_matches(request.headers.get("Authorization", ""), self.server.token):
            raise errors.unauthorized()

    # --- non-resource paths -------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def version(self, request: web.Request) -> web.Response:
        return json_response(discovery.version())

    async def api(self, request: web.Request) -> web.Response:
        return json_response(discovery.core_versions(f"{request.host}"))

    async def apis(self, request: web.Request) -> web.Response:
        return json_response(discovery.group_list(self.server.registry, self.server.aggregator.groups()))

    async def openapi_v3(self, request: web.Request) -> web.Response:
        tail = request.match_info.get("tail", "")
        if not tail:
            return json_response(openapi.discovery(self.server.registry))
        document = openapi.group_version_document(self.server.registry, tail)
        if document is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(document)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["apis"] and len(parts) >= 2 and self._aggregated(parts):
            version = parts[2] if len(parts) > 2 else self.server.aggregator.groups()[parts[1]][0]
            return await self.server.aggregator.proxy(request, parts[1], version, "system:admin")
        if parts == ["api", "v1"] or (parts[:1] == ["apis"] and len(parts) == 3):
            group = "" if parts[0] == "api" else parts[1]
            found = discovery.resource_list(self.server.registry, group, parts[-1])
            if found is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(found)
        if parts[:1] == ["apis"] and len(parts) == 2:
            found = discovery.group(self.server.registry, parts[1])
            if found is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(found)
        info = parse_api_path(path)
        if info is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self._resource_request(request, info)

    def _aggregated(self, parts: list[str]) -> bool:
        group = parts[1]
        if len(parts) == 2:
            return self.server.aggregator.serves(group) and not self.server.registry.groups().get(group)
        return self.server.aggregator.serves(group, parts[2]) and not self.server.registry.serves_group_version(
            group, parts[2])

    # --- resources ----------------------------------------------------------------------

    async def _resource_request(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        resource = self.server.registry.get(info.group, info.version, info.resource)
        if resource is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource.namespaced is False and info.namespace:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        query = request.query
        ctx = RequestContext(dry_run=query.get("dryRun") == "All",
                             field_validation=_field_validation(query.get("fieldValidation", "")))
        method = request.method
        objects = self.server.objects
        if info.subresource and not self._subresource_allowed(resource, info.subresource):
            raise errors.ApiError(404, "NotFound", f"the server could not find the requested resource "
                                                   f"({info.resource}/{info.subresource})")
        if method == "GET":
            watch = info.legacy_watch or query.get("watch") in ("true", "1")
            if watch:
                return await self._watch(request, resource, info)
            if not info.name:
                return await self._list(request, resource, info)
            if info.subresource == "scale":
                return json_response(await objects.get_scale(resource, info.namespace, info.name))
            if info.subresource == "log" and resource.kind == "Pod":
                return await self.server.pod_log(request, info.namespace, info.name)
            obj = await objects.get(resource, info.namespace, info.name)
            return self._object_response(request, resource, obj)
        if method == "POST":
            body = await _body(request)
            if info.subresource == "binding" and resource.kind == "Pod":
                return json_response(await self.server.bind_pod(info.namespace, info.name, body, ctx), 201)
            if info.subresource == "eviction" and resource.kind == "Pod":
                return json_response(await self.server.evict_pod(info.namespace, info.name, body, ctx), 201)
            if info.name:
                raise errors.method_not_allowed("POST", f"{info.resource}/{info.name}")
            created = await objects.create(resource, info.namespace, body, ctx)
            return json_response(created, 201, ctx.warnings)
        if method == "PUT":
            body = await _body(request)
            if info.subresource == "scale":
                replicas = (body.get("spec") or {}).get("replicas") if isinstance(body, dict) else None
                rv = ((body.get("metadata") or {}).get("resourceVersion", "")) if isinstance(body, dict) else ""
                return json_response(await objects.update_scale(resource, info.namespace, info.name, replicas, ctx,
                                                                rv))
            updated = await objects.update(resource, info.namespace, info.name, body, ctx,
                                           _storage_subresource(info.subresource))
            return json_response(updated, 200, ctx.warnings)
        if method == "PATCH":
            content_type = request.content_type
            body = await _body(request)
            if info.subresource == "scale":
                current = await objects.get_scale(resource, info.namespace, info.name)
                scaled = patch.merge_patch(current, body) if content_type != patch.JSON_PATCH else patch.json_patch(
                    current, body)
                return json_response(await objects.update_scale(resource, info.namespace, info.name,
                                                                (scaled.get("spec") or {}).get("replicas"), ctx))
            if content_type == patch.APPLY:
                raise errors.unsupported_media_type(content_type)
            patched = await objects.patch(resource, info.namespace, info.name, content_type, body, ctx,
                                          _storage_subresource(info.subresource))
            return json_response(patched, 200, ctx.warnings)
        if method == "DELETE":
            options = await _delete_options(request)
            if not info.name:
                labels = parse_label_selector(query.get("labelSelector", "")) if query.get("labelSelector") else None
                fields = parse_field_selector(query["fieldSelector"], resource.kind) if query.get(
                    "fieldSelector") else None
                return json_response(await objects.delete_collection(resource, info.namespace, options, ctx, labels,
                                                                     fields))
            return json_response(await objects.delete(resource, info.namespace, info.name, options, ctx))
        raise errors.method_not_allowed(method, info.resource)

    @staticmethod
    def _subresource_allowed(resource: ResourceInfo, subresource: str) -> bool:
        if subresource in resource.subresources():
            return True
        return resource.group == "" and (resource.kind, subresource) in {
            ("Pod", "binding"), ("Pod", "eviction"), ("Pod", "log"), ("Namespace", "finalize")}

    def _object_response(self, request: web.Request, resource: ResourceInfo, obj: Obj) -> web.Response:
        if tables.wants_table(request.headers.get("Accept", "")):
            return json_response(tables.table(resource, [obj], {"resourceVersion": obj["metadata"].get(
                "resourceVersion", "")}, request.query.get("includeObject", "Metadata")))
        return json_response(obj)

    async def _list(self, request: web.Request, resource: ResourceInfo, info: RequestInfo) -> web.Response:
        query = request.query
        labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else None
        fields = parse_field_selector(query["fieldSelector"], resource.kind) if query.get("fieldSelector") else None
        listed = await self.server.objects.list(
            resource, info.namespace, labels=labels, fields=fields, limit=_int(query.get("limit", "0"), "limit"),
            continue_token=query.get("continue", ""), resource_version=query.get("resourceVersion", ""),
            resource_version_match=query.get("resourceVersionMatch", ""))
        if tables.wants_table(request.headers.get("Accept", "")):
            return json_response(tables.table(resource, listed["items"], listed["metadata"],
                                              query.get("includeObject", "Metadata")))
        return json_response(listed)

    async def _watch(self, request: web.Request, resource: ResourceInfo, info: RequestInfo) -> web.StreamResponse:
        query = request.query
        labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else None
        field_text = query.get("fieldSelector", "")
        if info.name:  # GET .../watch/pods/name: a watch of one object
            field_text = ",".join(filter(None, [field_text, f"metadata.name={info.name}"]))
        fields = parse_field_selector(field_text, resource.kind) if field_text else None
        timeout = _int(query.get("timeoutSeconds", "0"), "timeoutSeconds") or random.randint(1800, 3600)
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        events = watch_events(self.server.store, resource, info.namespace, labels=labels, fields=fields,
                              resource_version=query.get("resourceVersion", ""),
                              bookmarks=query.get("allowWatchBookmarks") in ("true", "1"))
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                           "Cache-Control": "no-cache, private",
                                                           "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        try:
            async with asyncio.timeout(timeout):
                async for event in events:
                    if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        event = {"type": event["type"], "object": tables.table(
                            resource, [event["object"]], {"resourceVersion": event["object"]["metadata"].get(
                                "resourceVersion", "")}, query.get("includeObject", "Metadata"))}
                    await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        except TimeoutError:
            pass  # the watch ran its time: end it cleanly, the client resumes from its last version
        except ConnectionResetError:
            return response  # the client went away
        except StoreUnavailable as error:
            status = errors.service_unavailable(f"storage is unavailable: {error}").status()
            try:
                await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
            except ConnectionResetError:
                pass
        finally:
            await events.aclose()
        try:
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response


def _storage_subresource(subresource: str) -> str:
    return "status" if subresource == "status" else ""


def _field_validation(value: str) -> str:
    if value in ("", "Warn"):
        return "Warn"
    if value in ("Strict", "Ignore"):
        return value
    raise errors.bad_request(f"fieldValidation {value!r} is not supported: use Strict, Warn or Ignore")


def _int(text: str, name: str) -> int:
    try:
        value = int(text or "0")
    except ValueError:
        raise errors.bad_request(f"{name}: invalid value {text!r}: must be an integer") from None
    if value < 0:
        raise errors.bad_request(f"{name}: invalid value {text!r}: must not be negative")
    return value


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise errors.bad_request("the request body is empty")
    if len(raw) > MAX_BODY:
        raise errors.ApiError(413, "RequestEntityTooLarge", f"the request body is larger than {MAX_BODY} bytes")
    try:
        if request.content_type in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        raise errors.bad_request(f"the request body is not valid JSON: {error}") from None


async def _delete_options(request: web.Request) -> Obj:
    raw = await request.read()
    options: Obj = {}
    if raw:
        try:
            options = json.loads(raw)
        except ValueError as error:
            raise errors.bad_request(f"DeleteOptions: invalid JSON: {error}") from None
        if not isinstance(options, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
    query = request.query
    if "gracePeriodSeconds" in query:
        options["gracePeriodSeconds"] = _int(query["gracePeriodSeconds"], "gracePeriodSeconds")
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "orphanDependents" in query:
        options["orphanDependents"] = query["orphanDependents"] == "true"
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise errors.bad_request("DeleteOptions.gracePeriodSeconds must be an integer")
    return options


def bearer_token_matches(header: str, token: str) -> bool:
    """The auth scheme is case-insensitive (RFC 7235): in-cluster clients such as the Python
    client's load_incluster_config send "bearer <token>", and kube-apiserver accepts that."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return False
    return hmac.compare_digest(credentials.encode(), token.encode())
