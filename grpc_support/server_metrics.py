"""Per-method gRPC server metrics, with go-grpc-prometheus' names and labels, from a
grpc.aio server interceptor that is also a prometheus_client collector:

    grpc_server_started_total{grpc_type,grpc_service,grpc_method}             calls begun
    grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}   calls ended, by status
    grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}          histogram, begin to end
    grpc_server_msg_received_total{grpc_type,grpc_service,grpc_method}        request messages
    grpc_server_msg_sent_total{grpc_type,grpc_service,grpc_method}            response messages

grpc_type is unary, client_stream, server_stream or bidi_stream; grpc_code is Go's name
of the status ("OK", "Canceled", "NotFound", ...), so dashboards and alerts written for
Go servers work unchanged.

Per-call counting costs a few microseconds, nothing next to a call. Per-message counting
of a stream goes through a counting stand-in for the request iterator, the response
generator or the servicer context (whichever the servicer uses), which costs each message
a Python call and a counter increment. Methods named in ``uncounted_messages`` skip that:
their calls are still counted and timed, their messages are not (and their msg_* series
are absent rather than a misleading zero). virt-handler names MigrationTunnel there: it
moves a migration's memory in 256 KiB frames at link speed and uses the servicer
context's read/write, so without the stand-in its frames pass through untouched. (A
servicer that yields its responses instead still has them pass the generator that times
the call; only the counting is skipped.) bench/grpc_metrics.py measures all three ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator
from typing import Any

import grpc
from prometheus_client import Counter, Histogram
from prometheus_client.core import Metric

# Go's DefBuckets, which go-grpc-prometheus' handling histogram uses.
HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Go's codes.Code.String(): dashboards match on these ("Canceled" with one l).
GO_CODE_NAMES = {
    grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled", grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument", grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound", grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied", grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition", grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange", grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal", grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss", grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

_METHOD_LABELS = ["grpc_type", "grpc_service", "grpc_method"]


def method_path(descriptor_module: Any, service: str, method: str) -> str:
    """'/package.Service/Method', as interceptors see a call, from a generated *_pb2 module."""
    full_name = descriptor_module.DESCRIPTOR.services_by_name[service].methods_by_name[method].full_name
    service_name, _, method_name = full_name.rpartition(".")
    return f"/{service_name}/{method_name}"


def grpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _status(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with, as the server sends it."""
    if error is None or isinstance(error, grpc.aio.AbortError):
        return context.code() or (grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN)
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED  # the client went away or the server is stopping
    return grpc.StatusCode.UNKNOWN  # what grpc answers for an exception the servicer let out


class _Method:
    """One method's series, bound once (a labels() lookup per call would cost more)."""

    def __init__(self, metrics: GrpcServerMetrics, labels: tuple[str, str, str], count_messages: bool) -> None:
        self._handled_family = metrics.handled
        self._labels = labels
        self.started = metrics.started.labels(*labels)
        self.seconds = metrics.handling.labels(*labels)
        self.received = metrics.received.labels(*labels) if count_messages else None
        self.sent = metrics.sent.labels(*labels) if count_messages else None
        self._handled: dict[grpc.StatusCode, Any] = {}

    def finish(self, code: grpc.StatusCode, started: float) -> None:
        self.seconds.observe(time.perf_counter() - started)
        handled = self._handled.get(code)
        if handled is None:
            name = GO_CODE_NAMES.get(code, "Unknown")
            handled = self._handled[code] = self._handled_family.labels(*self._labels, name)
        handled.inc()


class _CountingContext:
    """The servicer context, counting what passes its read() and write()."""

    __slots__ = ("_context", "_received", "_sent")

    def __init__(self, context: grpc.aio.ServicerContext, received: Any, sent: Any) -> None:
        self._context = context
        self._received = received
        self._sent = sent

    async def read(self) -> Any:
        message = await self._context.read()
        if message is not grpc.aio.EOF:
            self._received.inc()
        return message

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._sent.inc()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


async def _counted(messages: AsyncIterator[Any], counter: Any) -> AsyncIterator[Any]:
    async for message in messages:
        counter.inc()
        yield message


def _instrument(behavior: Callable[..., Any], method: _Method, request_streaming: bool,
                response_streaming: bool) -> Callable[..., Any] | None:
    """The behavior, counted and timed; None for a kind grpc.aio runs that we do not wrap
    (plain functions and generators, which this project's servicers do not use)."""
    counting = method.received is not None

    def arguments(request: Any, context: Any) -> tuple[Any, Any]:
        if not counting:
            return request, context
        if not request_streaming:
            method.received.inc()
            # A unary-request servicer may still write its responses through the context.
            return request, (_CountingContext(context, method.received, method.sent)
                             if response_streaming else context)
        return _counted(request, method.received), _CountingContext(context, method.received, method.sent)

    if inspect.isasyncgenfunction(behavior):
        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            method.started.inc()
            started, error = time.perf_counter(), None
            try:
                async with contextlib.aclosing(behavior(*arguments(request, context))) as responses:
                    async for response in responses:
                        if counting:
                            method.sent.inc()
                        yield response
            except BaseException as failure:
                error = failure
                raise
            finally:
                method.finish(_status(context, error), started)
        return streaming

    if inspect.iscoroutinefunction(behavior):
        async def answering(request: Any, context: grpc.aio.ServicerContext) -> Any:
            method.started.inc()
            started, error = time.perf_counter(), None
            try:
                response = await behavior(*arguments(request, context))
            except BaseException as failure:
                error = failure
                raise
            finally:
                method.finish(_status(context, error), started)
            if counting and response is not None and context.code() in (None, grpc.StatusCode.OK):
                method.sent.inc()  # a unary response (stream handlers answer through write())
            return response
        return answering
    return None


_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class GrpcServerMetrics(grpc.aio.ServerInterceptor):
    """Pass as one of a grpc.aio server's interceptors, and register in a registry."""

    def __init__(self, *, uncounted_messages: Collection[str] = ()) -> None:
        """uncounted_messages: '/package.Service/Method' paths (see method_path) whose
        stream messages are not counted, to keep them off a hot path."""
        self._uncounted = frozenset(uncounted_messages)
        self.started = Counter("grpc_server_started", "RPCs begun on the server.", _METHOD_LABELS, registry=None)
        self.handled = Counter("grpc_server_handled", "RPCs completed on the server, by status code.",
                               [*_METHOD_LABELS, "grpc_code"], registry=None)
        self.handling = Histogram("grpc_server_handling_seconds", "Seconds from an RPC's start to its end on "
                                  "the server.", _METHOD_LABELS, registry=None, buckets=HANDLING_BUCKETS)
        self.received = Counter("grpc_server_msg_received", "Request messages received by the server.",
                                _METHOD_LABELS, registry=None)
        self.sent = Counter("grpc_server_msg_sent", "Response messages sent by the server.",
                            _METHOD_LABELS, registry=None)
        # method path -> (the handler grpc resolved, our wrapped one): grpc hands out the
        # same handler object per method, so wrapping happens once per method, not per call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails],
                                                             Awaitable[grpc.RpcMethodHandler]],
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # no such method: grpc answers UNIMPLEMENTED, nothing ran
        path = handler_call_details.method
        known = self._wrapped.get(path)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(path, handler)
        self._wrapped[path] = (handler, wrapped)
        return wrapped

    def _wrap(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        service, _, name = path.lstrip("/").rpartition("/")
        method = _Method(self, (grpc_type(handler), service, name), path not in self._uncounted)
        for field in _BEHAVIORS:
            behavior = getattr(handler, field)
            if behavior is not None:
                instrumented = _instrument(behavior, method, handler.request_streaming,
                                           handler.response_streaming)
                return handler if instrumented is None else handler._replace(**{field: instrumented})
        return handler

    def describe(self) -> Iterable[Metric]:
        return [family for metric in self._families() for family in metric.describe()]

    def collect(self) -> Iterator[Metric]:
        for metric in self._families():
            yield from metric.collect()

    def _families(self) -> tuple[Counter | Histogram, ...]:
        return self.started, self.handled, self.handling, self.received, self.sent
