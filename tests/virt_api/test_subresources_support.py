"""Shared by the subresource tests (no tests here): virt-api serving subresource_routes
over HTTPS, reached through the API server's aggregation layer (an APIService, as
deployed), and an in-process virt-handler registered as its node's handler pod."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from kube_client.rawapi import MERGE_PATCH, call
from local_cluster.threaded import ThreadedControlPlane
from pki.cluster_ca import NAMESPACE, ensure_ca
from virt_api.server import VirtAPI
from virt_api.subresources import subresource_routes
from virt_handler.__main__ import VirtHandler

Obj = dict[str, Any]
GROUP_PATH = "/apis/subresources.kubevirt.io/v1"
NODE = "sr-node"


@dataclass
class Env:
    api: client.ApiClient
    virt_api: VirtAPI
    # The API server's front-proxy certificate: what a direct call must present, as it does.
    front_proxy_cert: tuple[Path, Path]

    # --- plain HTTP through the API server --------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json", "Content-Type": "application/json",
                   "Authorization": self._token()}
        response = self.api.call_api(method, self.api.configuration.host + path, header_params=headers,
                                      body=body)
        data = response.read()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, data.decode(errors="replace")

    def vm_verb(self, namespace: str, name: str, verb: str, body: Any = None) -> tuple[int, Any]:
        return self.request("PUT", f"{GROUP_PATH}/namespaces/{namespace}/virtualmachines/{name}/{verb}", body)

    def vmi_verb(self, namespace: str, name: str, verb: str, body: Any = None, method: str = "PUT"
                 ) -> tuple[int, Any]:
        return self.request(method, f"{GROUP_PATH}/namespaces/{namespace}/virtualmachineinstances/{name}/{verb}",
                            body)

    # --- the console websocket through the API server ---------------------------------

    def console_url(self, namespace: str, name: str) -> str:
        return (f"{self.api.configuration.host}{GROUP_PATH}/namespaces/{namespace}"
                f"/virtualmachineinstances/{name}/console")

    def ws_options(self) -> dict[str, Any]:
        return {"headers": {"Authorization": self._token()}, "protocols": ("plain.kubevirt.io",),
                "ssl": ssl.create_default_context(cafile=self.api.configuration.ssl_ca_cert)}

    def direct_console_url(self, namespace: str, name: str) -> str:
        """virt-api itself, past the aggregation layer (which does not relay close codes)."""
        return (f"https://127.0.0.1:{self.virt_api.port}{GROUP_PATH}/namespaces/{namespace}"
                f"/virtualmachineinstances/{name}/console")

    def direct_ws_options(self) -> dict[str, Any]:
        ca = ensure_ca(client.CoreV1Api(self.api)).cert_pem.decode()
        context = ssl.create_default_context(cadata=ca)
        context.load_cert_chain(*self.front_proxy_cert)
        return {"protocols": ("plain.kubevirt.io",), "ssl": context}

    def _token(self) -> str:
        return self.api.configuration.auth_settings()["BearerToken"]["value"]

    # --- objects ----------------------------------------------------------------------

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def get(self, plural: str, namespace: str, name: str) -> Obj:
        return call(self.custom.get_namespaced_custom_object, "kubevirt.io", "v1", namespace, plural, name)

    def create(self, plural: str, namespace: str, body: Obj) -> Obj:
        return call(self.custom.create_namespaced_custom_object, "kubevirt.io", "v1", namespace, plural, body)

    def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> Obj:
        return call(self.custom.patch_namespaced_custom_object_status, "kubevirt.io", "v1", namespace, plural,
                    name, {"status": status}, _content_type=MERGE_PATCH)


def vmi_spec(memory: str = "64Mi", volumes: list[Obj] | None = None) -> Obj:
    return {"domain": {"devices": {}, "resources": {"requests": {"memory": memory}}},
            "terminationGracePeriodSeconds": 0, "volumes": volumes or []}


def vm_body(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": vmi_spec()}}}


def running_vmi(env: Env, namespace: str, name: str, node: str = NODE, labels: Obj | None = None,
                conditions: list[Obj] | None = None, owner: Obj | None = None) -> Obj:
    """A VMI as the handler reports a running one (no guest behind it)."""
    meta: Obj = {"name": name, "labels": labels or {}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True}]
    env.create("virtualmachineinstances", namespace, {"apiVersion": "kubevirt.io/v1",
                                                      "kind": "VirtualMachineInstance", "metadata": meta,
                                                      "spec": vmi_spec()})
    return env.patch_status("virtualmachineinstances", namespace, name,
                            {"phase": "Running", "nodeName": node, "conditions": conditions or []})


def _serve_virt_api_behind_apiservice(api: client.ApiClient, virt_api: VirtAPI) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(NAMESPACE, {
        "metadata": {"name": "virt-api-0", "labels": {"kubevirt.io": "virt-api"}},
        "spec": {"containers": [{"name": "virt-api", "image": "virt-api",
                                 "ports": [{"name": "https", "containerPort": virt_api.port}]}]}})
    core.patch_namespaced_pod_status("virt-api-0", NAMESPACE, {"status": {
        "phase": "Running", "podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}})
    core.create_namespaced_service(NAMESPACE, {"metadata": {"name": "virt-api"}, "spec": {
        "selector": {"kubevirt.io": "virt-api"}, "ports": [{"port": 443, "targetPort": "https"}]}})
    bundle = base64.b64encode(ensure_ca(core).cert_pem).decode()
    client.ApiregistrationV1Api(api).create_api_service({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1.subresources.kubevirt.io"},
        "spec": {"group": "subresources.kubevirt.io", "version": "v1", "groupPriorityMinimum": 1000,
                 "versionPriority": 15, "service": {"namespace": NAMESPACE, "name": "virt-api", "port": 443},
                 "caBundle": bundle}})


def register_handler_pod(api: client.ApiClient, node: str, port: int) -> None:
    """What the virt-handler DaemonSet's pod on ``node`` looks like to virt-api."""
    core = client.CoreV1Api(api)
    name = f"virt-handler-{node}"
    core.create_namespaced_pod(NAMESPACE, {
        "metadata": {"name": name, "labels": {"kubevirt.io": "virt-handler"}},
        "spec": {"nodeName": node, "containers": [{"name": "virt-handler", "image": "virt-handler",
                                                   "ports": [{"name": "node-service", "containerPort": port}]}]}})
    core.patch_namespaced_pod_status(name, NAMESPACE, {"status": {"phase": "Running", "podIP": "127.0.0.1"}})


@pytest.fixture(scope="module")
def env(kubevirt_api: client.ApiClient, control_plane: ThreadedControlPlane) -> Iterator[Env]:
    ensure_ca(client.CoreV1Api(kubevirt_api))
    virt_api = VirtAPI(kubevirt_api, NAMESPACE, "127.0.0.1", 0, [subresource_routes])
    virt_api.start()
    try:
        _serve_virt_api_behind_apiservice(kubevirt_api, virt_api)
        yield Env(kubevirt_api, virt_api, control_plane.plane.front_proxy_client_cert)
    finally:
        virt_api.stop()


@pytest.fixture(scope="module")
def handler(env: Env) -> Iterator[VirtHandler]:
    work = Path(tempfile.mkdtemp(prefix="kv-sr-", dir="/tmp"))
    client.CoreV1Api(env.api).create_node({"metadata": {"name": NODE}})
    virt_handler = VirtHandler(env.api, NODE, work / "sockets", "127.0.0.1:0")
    virt_handler.start()
    try:
        register_handler_pod(env.api, NODE, virt_handler.port)
        yield virt_handler
    finally:
        virt_handler.stop()
        shutil.rmtree(work, ignore_errors=True)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


async def read_console_until(socket: aiohttp.ClientWebSocketResponse, done: Callable[[bytes], bool],
                             timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(seen):
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"console did not show what was expected; got {seen[-500:]!r}"
        message = await socket.receive(timeout=remaining)
        assert message.type == aiohttp.WSMsgType.BINARY, f"unexpected {message.type}: {message.extra}"
        seen += message.data
    return seen
