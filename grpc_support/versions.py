"""Contract version negotiation: the highest version both peers implement.

Each contract has an Info service (proto/info/v1) listing the versions a server
implements. A client calls it once per connection and uses the highest version in
both lists, so a launcher and a handler from different releases keep working.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from grpc_support.server import Service, service
from kubevirt_grpc.info.v1 import info_pb2, info_pb2_grpc


class NoCommonVersion(RuntimeError):
    def __init__(self, contract: str, ours: Sequence[int], theirs: Sequence[int]) -> None:
        super().__init__(f"{contract}: no common contract version: this side speaks "
                         f"{_show(ours)}, the server speaks {_show(theirs)}")
        self.ours = list(ours)
        self.theirs = list(theirs)


def _show(versions: Iterable[int]) -> str:
    listed = ", ".join(f"v{v}" for v in sorted(versions))
    return listed or "nothing"


def highest_common(contract: str, ours: Sequence[int], theirs: Sequence[int]) -> int:
    common = set(ours) & set(theirs)
    if not common:
        raise NoCommonVersion(contract, ours, theirs)
    return max(common)


class InfoServicer:
    """Implements any of the Info services (CmdInfo, NotifyInfo, NodeServiceInfo)."""

    def __init__(self, supported: Sequence[int], server_version: str = "") -> None:
        self._response = info_pb2.InfoResponse(supported_versions=sorted(supported), server_version=server_version)

    async def Info(self, request: info_pb2.InfoRequest, context: grpc.aio.ServicerContext) -> info_pb2.InfoResponse:
        return self._response


# Contract name -> (generated stub class, add_*_to_server function).
INFO_SERVICES: dict[str, tuple[Any, Any]] = {
    "CmdInfo": (info_pb2_grpc.CmdInfoStub, info_pb2_grpc.add_CmdInfoServicer_to_server),
    "NotifyInfo": (info_pb2_grpc.NotifyInfoStub, info_pb2_grpc.add_NotifyInfoServicer_to_server),
    "NodeServiceInfo": (info_pb2_grpc.NodeServiceInfoStub, info_pb2_grpc.add_NodeServiceInfoServicer_to_server),
}


async def negotiate(channel: grpc.aio.Channel, info_service: str, ours: Sequence[int],
                    timeout: float = 10.0) -> int:
    """Ask the server behind ``channel`` which versions it speaks; return the highest common one."""
    stub_class, _ = INFO_SERVICES[info_service]
    response = await stub_class(channel).Info(info_pb2.InfoRequest(), timeout=timeout)
    return highest_common(info_service, ours, list(response.supported_versions))


def info_service(info_service_name: str, supported: Sequence[int], server_version: str = "") -> Service:
    """The named Info service, ready to pass to start_server."""
    _, add = INFO_SERVICES[info_service_name]
    return service(info_pb2, info_service_name, add, InfoServicer(supported, server_version))
