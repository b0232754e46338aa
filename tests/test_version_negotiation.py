"""Info services: both sides agree on the highest contract version they share."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from grpc_support.server import start_server
from grpc_support.unix import unix_target
from grpc_support.versions import INFO_SERVICES, NoCommonVersion, highest_common, info_service, negotiate


@pytest.mark.parametrize("ours, theirs, expected", [
    ([1], [1], 1),
    ([1, 2], [1, 2, 3], 2),
    ([1, 2, 3], [1, 3], 3),
    ([3, 1, 2], [2, 1], 2),
])
def test_highest_common_version(ours, theirs, expected) -> None:
    assert highest_common("Cmd", ours, theirs) == expected


def test_no_common_version_names_both_sides() -> None:
    with pytest.raises(NoCommonVersion, match=r"Cmd: no common contract version: this side speaks v2, v3, "
                                              r"the server speaks v1"):
        highest_common("Cmd", [3, 2], [1])


@pytest.mark.parametrize("contract", sorted(INFO_SERVICES))
def test_negotiation_over_a_real_socket(sockdir: Path, contract: str) -> None:
    async def scenario() -> None:
        socket = sockdir / "info.sock"
        server, _ = await start_server([info_service(contract, [1, 3, 4], "v0.1.0")], unix_socket=socket)
        try:
            async with grpc.aio.insecure_channel(unix_target(socket)) as channel:
                assert await negotiate(channel, contract, [1, 2, 3]) == 3
                assert await negotiate(channel, contract, [1, 2]) == 1
                assert await negotiate(channel, contract, [1, 2, 3, 4, 5]) == 4
                with pytest.raises(NoCommonVersion, match="the server speaks v1, v3, v4"):
                    await negotiate(channel, contract, [2])
        finally:
            await server.stop(None)

    asyncio.run(scenario())
