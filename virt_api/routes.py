"""Every part of virt-api that serves requests, in one list for the server."""

from __future__ import annotations

from virt_api.admission import admission_routes
from virt_api.server import RouteSource
from virt_api.subresources import subresource_routes

ROUTE_SOURCES: list[RouteSource] = [admission_routes, subresource_routes]
