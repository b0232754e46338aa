"""aiohttp handlers: one per path, each turning an AdmissionReview into its answer.

HTTP 400 only for a body that is not an answerable AdmissionReview; every verdict about
the object travels inside a 200 response, as kube-apiserver expects. A bug in a check
becomes a logged, denied review (never a 500 with a traceback), so one bad object cannot
take the webhook, and with failurePolicy Fail every write of that kind, down with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from virt_api.admission.review import (MalformedReview, ReviewRequest, bad_request_status, decode_body,
                                       parse_review, refused, review_response)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Admit = Callable[[ReviewRequest], Obj]


@dataclass(frozen=True)
class Route:
    path: str
    resource: str           # the request.resource.resource this webhook is registered for
    admit: Admit
    blocking: bool = False  # reads the cluster: run off the event loop


def _wrong_resource(route: Route, review: ReviewRequest) -> Obj | None:
    if review.resource and review.resource != route.resource:
        return refused(400, "BadRequest", f"{route.path} admits {route.resource}, not {review.resource}: "
                                          f"check the webhook configuration's rules")
    return None


async def _answer(route: Route, review: ReviewRequest) -> Obj:
    try:
        if route.blocking:
            return await asyncio.to_thread(route.admit, review)
        return route.admit(review)
    except Exception:  # noqa: BLE001 - see the module docstring
        log.exception("admission check %s failed on review %s", route.path, review.uid)
        return refused(500, "InternalError", f"virt-api could not check this object ({route.path}); "
                                             f"see the virt-api log for review {review.uid}")


def handler(route: Route) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        try:
            review = parse_review(decode_body(await request.read()))
        except MalformedReview as error:
            return web.json_response(bad_request_status(str(error)), status=400)
        response = _wrong_resource(route, review) or await _answer(route, review)
        return web.json_response(review_response(review, response))

    return handle


def route_defs(routes: list[Route]) -> list[web.RouteDef]:
    return [web.post(route.path, handler(route)) for route in routes]
