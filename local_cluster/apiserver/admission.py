"""Admission webhooks, called the way kube-apiserver calls them (AdmissionReview v1)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from local_cluster.apiserver import ca_bundles, errors
from local_cluster.apiserver.context import RequestContext
from local_cluster.apiserver.patch import json_patch
from local_cluster.apiserver.resources import ResourceInfo
from local_cluster.apiserver.selectors import selector_from_label_selector_object
from local_cluster.apiserver.services import NamespaceLabels, ServiceResolver, ServiceUnreachable

Obj = dict[str, Any]

# Webhooks never judge their own configuration, or a broken webhook could lock itself in.
_EXEMPT = {("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
           ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")}


@dataclass(frozen=True)
class Webhook:
    configuration: str
    spec: Obj

    @property
    def name(self) -> str:
        return self.spec.get("name", self.configuration)


class Admission:
    def __init__(self, resolver: ServiceResolver, namespace_labels: NamespaceLabels) -> None:
        self._resolver = resolver
        self._namespace_labels = namespace_labels
        self._mutating: list[Webhook] = []
        self._validating: list[Webhook] = []
        self._session: aiohttp.ClientSession | None = None

    def set_configurations(self, mutating: list[Obj], validating: list[Obj]) -> None:
        self._mutating = _webhooks(mutating)
        self._validating = _webhooks(validating)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def mutate(self, operation: str, info: ResourceInfo, namespace: str, obj: Obj, old: Obj | None,
                     ctx: RequestContext, subresource: str = "") -> Obj:
        for webhook in await self._matching(self._mutating, operation, info, namespace, obj, old, subresource):
            response = await self._call(webhook, operation, info, namespace, obj, old, ctx, subresource)
            if response is None:
                continue
            _raise_if_denied(webhook, response)
            if response.get("patch"):
                if response.get("patchType", "JSONPatch") != "JSONPatch":
                    raise errors.internal(f'webhook "{webhook.name}" returned unsupported patchType '
                                          f'{response.get("patchType")!r}')
                try:
                    operations = json.loads(base64.b64decode(response["patch"]))
                except (ValueError, TypeError) as error:
                    raise errors.internal(f'webhook "{webhook.name}" returned a malformed patch: {error}') from None
                obj = json_patch(obj, operations)
            for warning in response.get("warnings") or []:
                ctx.warn(warning)
        return obj

    async def validate(self, operation: str, info: ResourceInfo, namespace: str, obj: Obj | None, old: Obj | None,
                       ctx: RequestContext, subresource: str = "") -> None:
        hooks = await self._matching(self._validating, operation, info, namespace, obj, old, subresource)
        responses = await asyncio.gather(*(self._call(h, operation, info, namespace, obj, old, ctx, subresource)
                                           for h in hooks))
        for webhook, response in zip(hooks, responses):
            if response is not None:
                _raise_if_denied(webhook, response)
                for warning in response.get("warnings") or []:
                    ctx.warn(warning)

    async def _matching(self, webhooks: list[Webhook], operation: str, info: ResourceInfo, namespace: str,
                        obj: Obj | None, old: Obj | None, subresource: str) -> list[Webhook]:
        if not webhooks or (info.group, info.plural) in _EXEMPT:
            return []
        resource = f"{info.plural}/{subresource}" if subresource else info.plural
        chosen = []
        for webhook in webhooks:
            if not any(_rule_matches(rule, operation, info, resource) for rule in webhook.spec.get("rules") or []):
                continue
            if not _object_selector_matches(webhook.spec.get("objectSelector"), obj, old):
                continue
            if not await self._namespace_matches(webhook.spec.get("namespaceSelector"), info, namespace, obj, old):
                continue
            chosen.append(webhook)
        return chosen

    async def _namespace_matches(self, selector: Obj | None, info: ResourceInfo, namespace: str, obj: Obj | None,
                                 old: Obj | None) -> bool:
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            return True
        if info.group == "" and info.kind == "Namespace":
            labels = ((obj or old or {}).get("metadata") or {}).get("labels") or {}
        elif not info.namespaced:
            return True
        else:
            labels = await self._namespace_labels(namespace)
        return selector_from_label_selector_object(selector).matches(labels)

    async def _call(self, webhook: Webhook, operation: str, info: ResourceInfo, namespace: str, obj: Obj | None,
                    old: Obj | None, ctx: RequestContext, subresource: str) -> Obj | None:
        """The webhook's response, or None when it failed and its failurePolicy is Ignore."""
        review = _review(operation, info, namespace, obj, old, ctx, subresource)
        timeout = float(webhook.spec.get("timeoutSeconds", 10))
        try:
            url, tls_name = await self._target(webhook.spec.get("clientConfig") or {})
            async with self._client().post(url, json=review, ssl=_tls(webhook.spec.get("clientConfig") or {}),
                                           server_hostname=tls_name,
                                           timeout=aiohttp.ClientTimeout(total=timeout)) as reply:
                if reply.status != 200:
                    raise _CallFailed(f"the server responded with status {reply.status}")
                body = await reply.json(content_type=None)
            response = body.get("response") if isinstance(body, dict) else None
            if not isinstance(response, dict) or "allowed" not in response:
                raise _CallFailed("the response has no response.allowed")
            if response.get("uid") != review["request"]["uid"]:
                raise _CallFailed("the response uid does not match the request uid")
            return response
        except (_CallFailed, ServiceUnreachable, aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            if webhook.spec.get("failurePolicy", "Fail") == "Ignore":
                return None
            reason = str(error) or type(error).__name__
            raise errors.internal(f'failed calling webhook "{webhook.name}": {reason}') from None

    async def _target(self, client_config: Obj) -> tuple[str, str | None]:
        if client_config.get("url"):
            return client_config["url"], None
        service = client_config.get("service")
        if not service:
            raise _CallFailed("clientConfig needs url or service")
        endpoint = await self._resolver.resolve(service["namespace"], service["name"], int(service.get("port", 443)))
        return endpoint.url(service.get("path") or "/"), endpoint.tls_name

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session


class _CallFailed(Exception):
    pass


def _webhooks(configurations: list[Obj]) -> list[Webhook]:
    ordered = sorted(configurations, key=lambda c: c["metadata"]["name"])
    return [Webhook(c["metadata"]["name"], hook) for c in ordered for hook in c.get("webhooks") or []]


def _rule_matches(rule: Obj, operation: str, info: ResourceInfo, resource: str) -> bool:
    operations = rule.get("operations") or []
    if "*" not in operations and operation not in operations:
        return False
    if not _listed(rule.get("apiGroups") or [], info.group) or not _listed(rule.get("apiVersions") or [],
                                                                           info.version):
        return False
    scope = rule.get("scope", "*")
    if scope == "Namespaced" and not info.namespaced or scope == "Cluster" and info.namespaced:
        return False
    base, _, sub = resource.partition("/")
    for pattern in rule.get("resources") or []:
        p_base, _, p_sub = pattern.partition("/")
        if p_base in ("*", base) and (p_sub == sub or (p_sub == "*" and sub)):
            return True
    return False


def _listed(patterns: list[str], value: str) -> bool:
    return "*" in patterns or value in patterns


def _object_selector_matches(selector: Obj | None, obj: Obj | None, old: Obj | None) -> bool:
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return True
    parsed = selector_from_label_selector_object(selector)
    return any(parsed.matches(((o or {}).get("metadata") or {}).get("labels")) for o in (obj, old) if o is not None)


def _tls(client_config: Obj) -> ssl.SSLContext | bool:
    bundle = client_config.get("caBundle")
    if not bundle:
        return True  # the system trust store, as kube-apiserver uses without a caBundle
    return ca_bundles.trusting(bundle)


# Subresources whose request body is a kind of its own (kind names the body, resource the pod).
_SUBRESOURCE_KINDS = {("Pod", "eviction"): {"group": "policy", "version": "v1", "kind": "Eviction"},
                      ("Pod", "binding"): {"group": "", "version": "v1", "kind": "Binding"}}


def _review(operation: str, info: ResourceInfo, namespace: str, obj: Obj | None, old: Obj | None,
            ctx: RequestContext, subresource: str) -> Obj:
    subject = obj or old or {}
    kind = _SUBRESOURCE_KINDS.get((info.kind, subresource),
                                  {"group": info.group, "version": info.version, "kind": info.kind})
    resource = {"group": info.group, "version": info.version, "resource": info.plural}
    request: Obj = {
        "uid": str(uuid.uuid4()),
        "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
        "name": (subject.get("metadata") or {}).get("name", ""),
        "operation": operation,
        "userInfo": {"username": ctx.user, "groups": ["system:masters", "system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": ctx.dry_run,
        "options": {"kind": f"{operation.capitalize()}Options", "apiVersion": "meta.k8s.io/v1"},
    }
    if info.namespaced:
        request["namespace"] = namespace
    if subresource:
        request["subResource"] = subresource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _raise_if_denied(webhook: Webhook, response: Obj) -> None:
    if response.get("allowed"):
        return
    status = response.get("status") or {}
    message = status.get("message") or "without explanation"
    error = errors.ApiError(int(status.get("code") or 400), status.get("reason") or "BadRequest",
                            f'admission webhook "{webhook.name}" denied the request: {message}',
                            status.get("details"))
    raise error
