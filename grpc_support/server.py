"""Start a grpc.aio server that also answers health checks and reflection."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from grpc_support.decoding import RefuseUndecodable
from grpc_support.limits import OPTIONS
from grpc_support.unix import prepare_socket_path, restrict_socket, unix_target


@dataclass(frozen=True)
class Service:
    """One servicer and how to register it: ``add`` is the generated add_*_to_server."""

    full_name: str
    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


def service(descriptor_module: Any, name: str, add: Callable[[Any, grpc.aio.Server], None],
            servicer: Any) -> Service:
    """Build a Service from a generated ``*_pb2`` module and the service's short name."""
    return Service(descriptor_module.DESCRIPTOR.services_by_name[name].full_name, add, servicer)


async def start_server(services: Sequence[Service], *, unix_socket: str | os.PathLike[str] | None = None,
                       tcp_address: str | None = None,
                       credentials: grpc.ServerCredentials | None = None,
                       interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> tuple[grpc.aio.Server, int]:
    """Start serving ``services`` plus health and reflection; returns (server, bound port).

    Exactly one of ``unix_socket`` or ``tcp_address`` is required. A unix socket is
    created with mode 0600; a TCP address with ``credentials`` is served over TLS.
    ``interceptors`` (server_metrics.GrpcServerMetrics, ...) see every call, health and
    reflection included.
    """
    if (unix_socket is None) == (tcp_address is None):
        raise ValueError("start_server: give exactly one of unix_socket or tcp_address")
    # RefuseUndecodable runs last, next to the servicer, so the given interceptors (metrics)
    # see a refused request as the INVALID_ARGUMENT call it is.
    server = grpc.aio.server(options=OPTIONS, interceptors=[*interceptors, RefuseUndecodable()])
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for svc in services:
        svc.add(svc.servicer, server)
    names = [svc.full_name for svc in services]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    if unix_socket is not None:
        path = prepare_socket_path(unix_socket)
        port = server.add_insecure_port(unix_target(path))
    elif credentials is not None:
        port = server.add_secure_port(tcp_address, credentials)
    else:
        port = server.add_insecure_port(tcp_address)
    await server.start()
    if unix_socket is not None:
        restrict_socket(path)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
