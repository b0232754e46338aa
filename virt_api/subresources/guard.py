"""Every subresource answers a failure as a Kubernetes Status, never as a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from virt_api.subresources.context import Context
from virt_api.subresources.status import StatusError, internal

log = logging.getLogger(__name__)

Handler = Callable[[Context, web.Request], Awaitable[web.StreamResponse]]
_REASONS = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}


def guarded(ctx: Context, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(ctx, request)
        except StatusError as error:
            return error.response()
        except web.HTTPException as error:  # from aiohttp itself (an oversized body, ...)
            reason = _REASONS.get(error.status, error.reason.replace(" ", ""))
            return StatusError(error.status, reason, error.text or error.reason).response()
        except Exception as error:
            log.exception("%s %s failed", request.method, request.path)
            return internal(f"{type(error).__name__}: {error}").response()
    return handle
