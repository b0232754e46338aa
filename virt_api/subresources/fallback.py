"""Anything else under the group: a Status, as the API server would answer it (405 for
a known subresource asked with the wrong method, 404 otherwise), not aiohttp's text."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiohttp import web

from kubevirt_api.groups import SUBRESOURCES_GROUP
from virt_api.subresources.context import Context
from virt_api.subresources.guard import Handler
from virt_api.subresources.status import method_not_allowed, route_not_found
from virt_api.subresources.table import GROUP_VERSION_PATH, Subresource

CATCH_ALL_PATH = f"/apis/{SUBRESOURCES_GROUP}/{{tail:.*}}"
_SUBRESOURCE_PATH = re.compile(rf"^{re.escape(GROUP_VERSION_PATH)}/namespaces/[^/]+/([^/]+)/[^/]+/([^/]+)/?$")


def fallback(table: Sequence[Subresource]) -> Handler:
    known = {(s.resource, s.name) for s in table}

    async def handle(_ctx: Context, request: web.Request) -> web.Response:
        match = _SUBRESOURCE_PATH.match(request.path)
        if match and (match.group(1), match.group(2)) in known:
            raise method_not_allowed()
        raise route_not_found()
    return handle
