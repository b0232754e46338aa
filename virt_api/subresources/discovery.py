"""What the aggregation layer and kubectl ask of an API group's server: the group, the
version's resources (the subresources, as upstream lists them), and upstream's version
and healthz endpoints under the group version."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from kubevirt_api.groups import SUBRESOURCES_GROUP
from virt_api.subresources.context import Context
from virt_api.subresources.guard import Handler
from virt_api.subresources.status import StatusError
from virt_api.subresources.table import Subresource

Obj = dict[str, Any]
VERSION = "v1"
GROUP_VERSION = f"{SUBRESOURCES_GROUP}/{VERSION}"


def api_group() -> Obj:
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": SUBRESOURCES_GROUP, "versions": [version],
            "preferredVersion": version,
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def api_resources(table: Sequence[Subresource]) -> Obj:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
            "resources": [{"name": s.discovery_name, "singularName": "", "namespaced": True, "kind": "",
                           "verbs": [s.kube_verb]} for s in table]}


def version_info() -> Obj:
    """Upstream's version shape; the Go fields tell what runs instead."""
    try:
        version = importlib.metadata.version("kubevirt-py")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    return {"gitVersion": f"v{version}", "gitCommit": "", "gitTreeState": "", "buildDate": "",
            "goVersion": f"python{platform.python_version()}", "compiler": platform.python_implementation().lower(),
            "platform": f"{platform.system().lower()}/{platform.machine()}"}


async def group(_ctx: Context, _request: web.Request) -> web.Response:
    return web.json_response(api_group())


def resources(table: Sequence[Subresource]) -> Handler:
    async def handle(_ctx: Context, _request: web.Request) -> web.Response:
        return web.json_response(api_resources(table))
    return handle


async def version(_ctx: Context, _request: web.Request) -> web.Response:
    return web.json_response(version_info())


async def healthz(ctx: Context, _request: web.Request) -> web.Response:
    """Healthy while the API server answers, as upstream's connection check."""
    try:
        await ctx.kube.healthy()
    except Exception as error:
        raise StatusError(500, "InternalError", f"apiserver: {error}") from None
    return web.json_response({"apiserver": "ok"})
