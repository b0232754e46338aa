"""The local API server's authentication middleware: every path but health and version
needs the bearer token, whatever the verb, and a near miss is as wrong as none.
(tests/apiserver/test_crud.py checks the same through a whole control plane, and
tests/local_cluster/test_pod_logs.py the kubelet's refusal of callers without the API
server's client certificate.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from local_cluster.apiserver.http import Handlers

TOKEN = "s3cret-token"
PROTECTED = ["/api", "/apis", "/api/v1/namespaces/default/pods", "/api/v1/pods?watch=1",
             "/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances",
             "/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/v/console",
             "/openapi/v3", "/healthz/../api", "/HEALTHZ"]
WRONG = [None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}",
         TOKEN, f"Bearer  {TOKEN} extra"]


def test_every_protected_path_and_verb_needs_the_token() -> None:
    async def reached(request: web.Request) -> web.Response:
        return web.Response(text="reached")

    async def scenario() -> None:
        handlers = Handlers(SimpleNamespace(token=TOKEN))
        app = web.Application(middlewares=[handlers.middleware])
        app.router.add_route("*", "/{tail:.*}", reached)
        async with TestClient(TestServer(app)) as http:
            for path in PROTECTED:
                for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                    for header in WRONG:
                        headers = {} if header is None else {"Authorization": header}
                        async with http.request(method, path, headers=headers) as reply:
                            assert reply.status == 401, (method, path, header)
                            body = await reply.json()
                            assert body["kind"] == "Status" and body["code"] == 401
                            assert TOKEN not in await reply.text()
                    async with http.request(method, path, headers={"Authorization": f"bearer {TOKEN}"}) as reply:
                        assert reply.status == 200 and await reply.text() == "reached"
            for public in ("/healthz", "/livez", "/readyz", "/version"):
                async with http.get(public) as reply:
                    assert reply.status == 200

    asyncio.run(scenario())
