"""Every part of virt-api that serves requests, in one list for the server."""

from __future__ import annotations

from virt_api.server import RouteSource

ROUTE_SOURCES: list[RouteSource] = []
