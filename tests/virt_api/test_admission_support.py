"""Helpers shared by the admission tests (no tests here): review bodies, a tiny RFC 6902
applier, manifests, and the webhooks served by a real aiohttp server in-process."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from virt_api.admission import admission_route_defs, admission_table
from virt_api.admission.lookups import Lookups
from virt_api.admission.review import parse_review

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_EXAMPLES = sorted((ROOT / "tests/fixtures/upstream_examples").glob("*.yaml"))
DEMO = ROOT / "deploy/examples/vm-demo.yaml"
NAMESPACE = "kubevirt"
USER = {"username": "jane", "groups": ["system:authenticated"]}
CONTROLLER = {"username": "system:serviceaccount:kubevirt:kubevirt-controller",
              "groups": ["system:serviceaccounts", "system:authenticated"]}

RESOURCES = {
    "VirtualMachineInstance": "virtualmachineinstances",
    "VirtualMachine": "virtualmachines",
    "VirtualMachineInstanceReplicaSet": "virtualmachineinstancereplicasets",
    "VirtualMachineInstanceMigration": "virtualmachineinstancemigrations",
}
MUTATE = {
    "VirtualMachineInstance": "/virtualmachineinstances-mutate",
    "VirtualMachine": "/virtualmachines-mutate",
    "VirtualMachineInstanceMigration": "/migration-mutate-create",
}
VALIDATE_CREATE = {
    "VirtualMachineInstance": "/virtualmachineinstances-validate-create",
    "VirtualMachine": "/virtualmachines-validate",
    "VirtualMachineInstanceReplicaSet": "/virtualmachinereplicaset-validate",
    "VirtualMachineInstanceMigration": "/migration-validate-create",
}


def load(path: Path) -> Obj:
    return yaml.safe_load(path.read_text())


def body(obj: Obj | None, *, operation: str = "CREATE", old: Obj | None = None, user: Obj = USER,
         resource: str | None = None, namespace: str = "default", uid: str = "0f1e2d3c") -> Obj:
    """An AdmissionReview v1 as kube-apiserver sends it."""
    subject = obj or old or {}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "operation": operation, "namespace": namespace,
        "name": (subject.get("metadata") or {}).get("name", ""),
        "resource": {"group": "kubevirt.io", "version": "v1",
                     "resource": resource or RESOURCES.get(subject.get("kind", ""), "")},
        "userInfo": user, "object": obj, "oldObject": old}}


# --- RFC 6902, only what mutators emit (add, replace, remove) ---------------------------

def _parent(doc: Any, path: str) -> tuple[Any, str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc, parts[-1]


def apply_patch(obj: Obj, operations: list[Obj]) -> Obj:
    doc = copy.deepcopy(obj)
    for op in operations:
        if op["path"] == "":
            doc = copy.deepcopy(op["value"])
            continue
        parent, key = _parent(doc, op["path"])
        if isinstance(parent, list):
            index = len(parent) if key == "-" else int(key)
            if op["op"] == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif op["op"] == "replace":
                parent[index] = copy.deepcopy(op["value"])
            else:
                del parent[index]
        elif op["op"] in ("add", "replace"):
            assert op["op"] == "add" or key in parent, f"replace of a missing member {op['path']}"
            parent[key] = copy.deepcopy(op["value"])
        else:
            del parent[key]
    return doc


def patch_of(response: Obj) -> list[Obj]:
    if "patch" not in response:
        return []
    assert response["patchType"] == "JSONPatch"
    return json.loads(base64.b64decode(response["patch"]))


# --- calling the checks directly (fast) and over HTTP (the real envelope) -------------

def no_lookups() -> Lookups:
    return Lookups(vmi=lambda namespace, name: None, migrations=lambda namespace, name: [])


class Direct:
    """The route table's checks called in-process, as the handlers call them."""

    def __init__(self, lookups: Lookups | None = None) -> None:
        self.routes = {r.path: r for r in admission_table(lookups or no_lookups(), NAMESPACE)}

    def __call__(self, path: str, review: Obj) -> Obj:
        return self.routes[path].admit(parse_review(review))

    def admit(self, obj: Obj, *, user: Obj = USER) -> tuple[Obj, Obj]:
        """Mutate (when the kind has a mutator), then validate: the API server's order.
        Returns the stored object and the validation response."""
        kind = obj["kind"]
        if kind in MUTATE:
            obj = apply_patch(obj, patch_of(self(MUTATE[kind], body(obj, user=user))))
        return obj, self(VALIDATE_CREATE[kind], body(obj, user=user))


def causes(response: Obj) -> list[Obj]:
    return (((response.get("status") or {}).get("details") or {}).get("causes")) or []


class Served:
    """The webhooks behind aiohttp's test server, driven from synchronous tests."""

    def __init__(self, lookups: Lookups | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.add_routes(admission_route_defs(lookups or no_lookups(), NAMESPACE))

        async def start() -> TestClient:
            client = TestClient(TestServer(app))
            await client.start_server()
            return client

        self.client = self.loop.run_until_complete(start())

    def post(self, path: str, data: bytes | str | Obj | list | None) -> tuple[int, Any]:
        raw = data if isinstance(data, (bytes, str)) else json.dumps(data)

        async def go() -> tuple[int, Any]:
            async with self.client.post(path, data=raw, headers={"Content-Type": "application/json"}) as reply:
                text = await reply.text()
                try:
                    return reply.status, json.loads(text)
                except ValueError:
                    return reply.status, text

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()
