"""The API server: storage, served resources, admission and HTTP, started and stopped as one."""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from kube_client import front_proxy
from kube_client.timestamps import now_text
from local_cluster.apiserver import crds, errors
from local_cluster.apiserver.admission import Admission
from local_cluster.apiserver.aggregation import Aggregator, available_status
from local_cluster.apiserver.builtin import builtin_resources
from local_cluster.apiserver.context import RequestContext
from local_cluster.apiserver.http import MAX_BODY, Handlers
from local_cluster.apiserver.kubelet_client import KubeletClient
from local_cluster.apiserver.patch import MERGE
from local_cluster.apiserver.pod_logs import assigned_node, kubelet_endpoint, log_container, log_options
from local_cluster.apiserver.resources import Registry, ResourceInfo
from local_cluster.apiserver.rest import Objects
from local_cluster.apiserver.service_accounts import ServiceAccountAdmission, store_lookup
from local_cluster.apiserver.services import ServiceResolver
from local_cluster.storage.interface import Store

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_CRD = ("apiextensions.k8s.io", "customresourcedefinitions")
_VALIDATING = ("admissionregistration.k8s.io", "validatingwebhookconfigurations")
_MUTATING = ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
_APISERVICES = ("apiregistration.k8s.io", "apiservices")


class APIServer:
    def __init__(self, store: Store, token: str, *, host: str = "127.0.0.1", port: int = 0,
                 tls_cert: Path | None = None, tls_key: Path | None = None,
                 kubelet_client_cert: tuple[Path, Path] | None = None,
                 front_proxy_client_cert: tuple[Path, Path] | None = None,
                 authentication: dict[str, str] | None = None) -> None:
        """front_proxy_client_cert: what aggregated calls present to their backends;
        authentication: the data of kube-system/extension-apiserver-authentication, which
        tells those backends how to recognise such calls (kube_client.front_proxy)."""
        self.store = store
        self.token = token
        self.host = host
        self.port = port
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self.registry = Registry()
        for info in builtin_resources():
            self.registry.add(info)
        self.resolver = ServiceResolver(store)
        self.admission = Admission(self.resolver, self._namespace_labels)
        self.aggregator = Aggregator(self.resolver, front_proxy_client_cert)
        self._authentication = authentication
        accounts = ServiceAccountAdmission(store_lookup(store, self.resource("", "v1", "serviceaccounts")))
        self.objects = Objects(store, self.admission, accounts)
        self.objects.hooks.append(self._on_change)
        self.kubelets = KubeletClient(kubelet_client_cert)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def resource(self, group: str, version: str, plural: str) -> ResourceInfo:
        info = self.registry.get(group, version, plural)
        if info is None:
            raise KeyError(f"{plural}.{group}/{version} is not served")
        return info

    async def start(self) -> None:
        await self._load_dynamic_configuration()
        await self._ensure_namespaces()
        if self._authentication is not None:
            await self._publish_authentication(self._authentication)
        handlers = Handlers(self)
        app = web.Application(middlewares=[handlers.middleware], client_max_size=MAX_BODY + 1024)
        # Each with and without a trailing slash, as kube-apiserver answers both (the
        # official client asks for /version/ and /api/).
        for path, handler in (("/healthz", handlers.health), ("/livez", handlers.health),
                              ("/readyz", handlers.health), ("/version", handlers.version),
                              ("/api", handlers.api), ("/apis", handlers.apis)):
            app.router.add_get(path, handler)
            app.router.add_get(f"{path}/", handler)
        app.router.add_get("/openapi/v3", handlers.openapi_v3)
        app.router.add_get("/openapi/v3/{tail:.*}", handlers.openapi_v3)
        app.router.add_route("*", "/{tail:.*}", handlers.dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        context = None
        if self._tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self._tls[0]), str(self._tls[1]))
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.admission.close()
        await self.aggregator.close()
        await self.kubelets.close()

    # --- dynamic configuration: CRDs, webhooks, API services ---------------------------

    async def _load_dynamic_configuration(self) -> None:
        for crd in await self._stored(*_CRD):
            self._serve_crd(crd)
        await self._reload_webhooks()
        await self._reload_api_services()

    async def _stored(self, group: str, plural: str) -> list[Obj]:
        info = next(i for i in builtin_resources() if i.group == group and i.plural == plural)
        kvs, _, _ = await self.store.list(info.storage_prefix())
        return [json.loads(kv.value) for kv in kvs]

    async def _on_change(self, info: ResourceInfo, after: Obj | None, before: Obj | None) -> None:
        key = (info.group, info.plural)
        if key == _CRD:
            await self._crd_changed(after, before)
        elif key in (_VALIDATING, _MUTATING):
            await self._reload_webhooks()
        elif key == _APISERVICES:
            await self._reload_api_services()
            if after is not None and not (after.get("status") or {}).get("conditions"):
                await self._set_status(info, after, available_status())

    def _serve_crd(self, crd: Obj) -> None:
        spec = crd["spec"]
        self.registry.remove_group_resource(spec["group"], spec["names"]["plural"])
        for info in crds.served_resources(crd):
            self.registry.add(info)
        self.registry.set_version_order(spec["group"], crds.version_order(crd))

    async def _crd_changed(self, after: Obj | None, before: Obj | None) -> None:
        if after is None:
            assert before is not None
            served = crds.served_resources(before)
            self.registry.remove_group_resource(before["spec"]["group"], before["spec"]["names"]["plural"])
            if served:
                await self._delete_all_instances(served[0])
            return
        self._serve_crd(after)
        conditions = {c.get("type"): c.get("status") for c in (after.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") != "True":
            crd_info = self.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            await self._set_status(crd_info, after, crds.established_status(after))

    async def _delete_all_instances(self, info: ResourceInfo) -> None:
        # Deleting a CRD deletes its objects, as the CRD cleanup finalizer does upstream.
        while True:
            kvs, _, more = await self.store.list(info.storage_prefix(), limit=500)
            for kv in kvs:
                await self.store.delete(kv.key)
            if not more:
                return

    async def _set_status(self, info: ResourceInfo, obj: Obj, status: Obj) -> None:
        meta = obj["metadata"]
        try:
            await self.objects.patch(info, meta.get("namespace", ""), meta["name"], MERGE, {"status": status},
                                     RequestContext(internal=True), subresource="status")
        except errors.ApiError as error:
            log.warning("could not set status of %s %s: %s", info.kind, meta["name"], error.message)

    async def _reload_webhooks(self) -> None:
        self.admission.set_configurations(await self._stored(*_MUTATING), await self._stored(*_VALIDATING))

    async def _reload_api_services(self) -> None:
        self.aggregator.set_api_services(await self._stored(*_APISERVICES))

    async def _namespace_labels(self, namespace: str) -> dict[str, str]:
        kv = await self.store.get(f"/registry/namespaces/{namespace}")
        return (json.loads(kv.value).get("metadata") or {}).get("labels") or {} if kv else {}

    async def _ensure_namespaces(self) -> None:
        info = self.resource("", "v1", "namespaces")
        for name in DEFAULT_NAMESPACES:
            if await self.store.get(info.key("", name)) is None:
                try:
                    await self.objects.create(info, "", {"metadata": {"name": name}}, RequestContext(internal=True))
                except errors.ApiError as error:
                    if error.code != 409:
                        raise

    async def _publish_authentication(self, data: dict[str, str]) -> None:
        """As kube-apiserver keeps it: created, or put back to what this server trusts."""
        info = self.resource("", "v1", "configmaps")
        ctx = RequestContext(internal=True)
        wanted = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": front_proxy.CONFIG_MAP, "namespace": front_proxy.NAMESPACE}, "data": data}
        try:
            current = await self.objects.get(info, front_proxy.NAMESPACE, front_proxy.CONFIG_MAP)
        except errors.ApiError as error:
            if error.code != 404:
                raise
            await self.objects.create(info, front_proxy.NAMESPACE, wanted, ctx)
            return
        if current.get("data") != data:
            await self.objects.update(info, front_proxy.NAMESPACE, front_proxy.CONFIG_MAP,
                                      {**current, "data": data}, ctx)

    # --- pod subresources ----------------------------------------------------------------

    async def bind_pod(self, namespace: str, name: str, binding: Any, ctx: RequestContext) -> Obj:
        target = (binding or {}).get("target") or {} if isinstance(binding, dict) else {}
        node = target.get("name")
        if not node:
            raise errors.InvalidError("", "Binding", name, [errors.FieldError("target.name", "FieldValueRequired")])
        pods = self.resource("", "v1", "pods")
        pod = await self.objects.get(pods, namespace, name)
        if (pod.get("spec") or {}).get("nodeName"):
            raise errors.conflict("pods", "", name, f"pod {name} is already assigned to node "
                                                    f"\"{pod['spec']['nodeName']}\"")
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", "", name, "pod is being deleted")
        pod["spec"]["nodeName"] = node
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": now_text()})
        pod.setdefault("status", {})["conditions"] = conditions
        await self.objects.update(pods, namespace, name, pod, ctx, subresource="binding")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    async def evict_pod(self, namespace: str, name: str, eviction: Any, ctx: RequestContext) -> Obj:
        pods = self.resource("", "v1", "pods")
        await self.objects.get(pods, namespace, name)  # 404 for a pod that is not there
        # As kube-apiserver reviews it: the Eviction (named after the pod) is the object.
        review_object = {"apiVersion": "policy/v1", "kind": "Eviction",
                         **(eviction if isinstance(eviction, dict) else {}),
                         "metadata": {**((eviction or {}).get("metadata") or {} if isinstance(eviction, dict) else {}),
                                      "name": name, "namespace": namespace}}
        await self.admission.validate("CREATE", pods, namespace, review_object, None, ctx, subresource="eviction")
        options = (eviction or {}).get("deleteOptions") if isinstance(eviction, dict) else None
        await self.objects.delete(pods, namespace, name, options, ctx)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    async def pod_log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        """GET pods/{name}/log: checked here, then streamed from the kubelet of the pod's node."""
        options = log_options(request.query, name)
        pod = await self.objects.get(self.resource("", "v1", "pods"), namespace, name)
        container = log_container(pod, options.container)
        node = await self.objects.get(self.resource("", "v1", "nodes"), "", assigned_node(pod))
        host, port = kubelet_endpoint(node)
        return await self.kubelets.stream_logs(request, host, port, namespace, name, container,
                                               options.kubelet_query())
