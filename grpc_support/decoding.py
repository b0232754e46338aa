"""Requests that are not the message they claim to be answer INVALID_ARGUMENT.

grpc.aio turns a request deserializer's exception into UNKNOWN ("Unexpected <class
DecodeError>..."), which tells a peer nothing about whose fault it was. The deserializer
is wrapped so that a parse failure reaches the behavior as a marker, and the behavior
refuses it with INVALID_ARGUMENT naming the message type: for one request message before
the servicer runs; for a request stream when the servicer reads that message, through
the request iterator or context.read() (the context is wrapped for that).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError


@dataclass(frozen=True)
class _Undecodable:
    reason: str


def _safe(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return _Undecodable(str(error))
    return decode


async def _refuse(request: _Undecodable, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: {request.reason}")


def _guard(behavior: Callable[..., Any]) -> Callable[..., Any] | None:
    """The behavior, refusing undecodable requests; None for a kind this project's
    servicers do not use (plain functions and generators)."""
    if inspect.isasyncgenfunction(behavior):
        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, _Undecodable):
                await _refuse(request, context)
            async for response in behavior(request, context):
                yield response
        return streaming
    if inspect.iscoroutinefunction(behavior):
        async def answering(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                await _refuse(request, context)
            return await behavior(request, context)
        return answering
    return None


class _RefusingContext:
    """The servicer's context, whose read() refuses an undecodable message."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def read(self) -> Any:
        message = await self._context.read()
        if isinstance(message, _Undecodable):
            await _refuse(message, self._context)
        return message


async def _refusing(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    async for message in requests:
        if isinstance(message, _Undecodable):
            await _refuse(message, context)
        yield message


def _guard_stream(behavior: Callable[..., Any]) -> Callable[..., Any] | None:
    """A request-streaming behavior, refusing undecodable messages as it reads them."""
    if inspect.isasyncgenfunction(behavior):
        async def streaming(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for response in behavior(_refusing(requests, context), _RefusingContext(context)):
                yield response
        return streaming
    if inspect.iscoroutinefunction(behavior):
        async def answering(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await behavior(_refusing(requests, context), _RefusingContext(context))
        return answering
    return None


class RefuseUndecodable(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        # grpc hands out the same handler object per method: wrap each once.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails],
                                                             Awaitable[grpc.RpcMethodHandler]],
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        known = self._wrapped.get(handler_call_details.method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = _wrap(handler)
        self._wrapped[handler_call_details.method] = (handler, wrapped)
        return wrapped


def _wrap(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    if handler.request_streaming:
        field = "stream_stream" if handler.response_streaming else "stream_unary"
        guarded = _guard_stream(getattr(handler, field))
    else:
        field = "unary_stream" if handler.response_streaming else "unary_unary"
        guarded = _guard(getattr(handler, field))
    if guarded is None:
        return handler
    return handler._replace(**{field: guarded, "request_deserializer": _safe(handler.request_deserializer)})
