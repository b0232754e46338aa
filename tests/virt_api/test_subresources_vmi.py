"""VMI subresources and discovery through the API server, forwarded to an in-process
virt-handler over NodeService; the console is bridged to a stand-in serial socket."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from kubevirt_api.pod_layout import serial_socket
from tests.virt_api.test_subresources_support import (GROUP_PATH, NODE, Env, env, handler,  # noqa: F401  (fixtures)
                                                  read_console_until, running_vmi)
from virt_handler.__main__ import VirtHandler

NS = "default"
PAUSED = {"type": "Paused", "status": "True", "reason": "PausedByUser"}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class FakeSerial:
    """A guest's serial port as QEMU binds it, in the handler's sockets directory."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_unix_server(self._greet_and_echo, str(path)), self.loop).result(5)

    async def _greet_and_echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"guest login: ")
        await writer.drain()
        while data := await reader.read(1024):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    def close(self) -> None:
        # Closed on its own loop: a close from this thread races the loop's own handling
        # of the console's disconnect (Python 3.11's Server then fails in _wakeup).
        self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture
def console_vmi(env: Env, handler: VirtHandler) -> Iterator[str]:
    name = _name("console")
    vmi = running_vmi(env, NS, name)
    fake = FakeSerial(Path(serial_socket(vmi["metadata"]["uid"], str(handler.sync.sockets_dir))))
    yield name
    fake.close()


def test_discovery(env: Env) -> None:
    status, group = env.request("GET", "/apis/subresources.kubevirt.io")
    assert status == 200 and group["kind"] == "APIGroup" and group["name"] == "subresources.kubevirt.io"
    assert group["preferredVersion"] == {"groupVersion": "subresources.kubevirt.io/v1", "version": "v1"}
    status, resources = env.request("GET", GROUP_PATH)
    names = {r["name"]: r["verbs"] for r in resources["resources"]}
    assert status == 200 and resources["kind"] == "APIResourceList"
    assert names["virtualmachineinstances/console"] == ["get"]
    assert {"virtualmachineinstances/pause", "virtualmachineinstances/unpause", "virtualmachines/start",
            "virtualmachines/stop", "virtualmachines/restart", "virtualmachines/migrate"} <= set(names)
    assert all(r["namespaced"] for r in resources["resources"])
    status, version = env.request("GET", f"{GROUP_PATH}/version")
    assert status == 200 and version["gitVersion"].startswith("v")
    assert env.request("GET", f"{GROUP_PATH}/healthz") == (200, {"apiserver": "ok"})


def test_vmi_must_exist_and_run(env: Env) -> None:
    status, body = env.vmi_verb(NS, "nope", "pause")
    assert status == 404 and body["message"] == 'virtualmachineinstance.kubevirt.io "nope" not found'
    name = _name("pending")
    env.create("virtualmachineinstances", NS, {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                               "metadata": {"name": name}, "spec": {"domain": {"devices": {}}}})
    status, body = env.vmi_verb(NS, name, "pause")
    assert status == 409 and body["reason"] == "Conflict" and body["message"].endswith("VM is not running")
    status, body = env.vmi_verb(NS, name, "unpause")
    assert status == 409 and body["message"].endswith("VMI is not running")
    status, body = env.vmi_verb(NS, name, "console", method="GET")
    assert (status, body["reason"], body["message"]) == (400, "BadRequest", "VMI is not running")


def test_checks_before_forwarding(env: Env) -> None:
    name = _name("checks")
    running_vmi(env, NS, name, conditions=[PAUSED])
    status, body = env.vmi_verb(NS, name, "pause")
    assert status == 409 and body["message"].endswith("VMI is already paused")
    status, body = env.vmi_verb(NS, name, "softreboot")
    assert status == 409 and body["message"].endswith("VMI is paused")
    other = _name("checks")
    running_vmi(env, NS, other)
    status, body = env.vmi_verb(NS, other, "unpause")
    assert status == 409 and body["message"].endswith("VMI is not paused")
    status, body = env.vmi_verb(NS, other, "guestosinfo", method="GET")
    assert status == 409 and body["message"].endswith("VMI does not have guest agent connected")
    status, body = env.vmi_verb(NS, other, "explode")
    assert (status, body["kind"], body["reason"]) == (404, "Status", "NotFound")
    status, body = env.vmi_verb(NS, other, "pause", method="GET")
    assert (status, body["reason"]) == (405, "MethodNotAllowed")


def test_forwarded_to_the_nodes_handler(env: Env, handler: VirtHandler) -> None:
    name = _name("forward")
    running_vmi(env, NS, name)
    # The handler answers over mutual TLS; this VMI has no launcher there, and it says so.
    status, body = env.vmi_verb(NS, name, "pause")
    assert (status, body["reason"]) == (500, "InternalError") and "has no launcher on node" in body["message"]
    nowhere = _name("nowhere")
    running_vmi(env, NS, nowhere, node="no-such-node")
    status, body = env.vmi_verb(NS, nowhere, "reset")
    assert status == 503 and body["message"] == "no running virt-handler found on node no-such-node"
    assert env.vmi_verb(NS, nowhere, "pause", {"dryRun": ["All"]}) == (200, None)


def test_console_round_trip(env: Env, console_vmi: str) -> None:
    async def session() -> None:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(env.console_url(NS, console_vmi), **env.ws_options()) as socket:
                assert socket.protocol == "plain.kubevirt.io"
                await read_console_until(socket, lambda seen: b"guest login: " in seen)
                await socket.send_bytes(b"root\n")
                await read_console_until(socket, lambda seen: b"ROOT\n" in seen)

    asyncio.run(session())


def test_a_second_console_takes_over(env: Env, console_vmi: str) -> None:
    async def sessions() -> None:
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(env.direct_console_url(NS, console_vmi), **env.direct_ws_options())
            await read_console_until(first, lambda seen: b"login: " in seen)
            second = await http.ws_connect(env.console_url(NS, console_vmi), **env.ws_options())
            closing = await first.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE, closing
            # virtctl reads 1001 as "another user connected to the console of the target vm".
            assert first.close_code == aiohttp.WSCloseCode.GOING_AWAY and "another user" in closing.extra
            await read_console_until(second, lambda seen: b"login: " in seen)
            await second.send_bytes(b"mine now")
            await read_console_until(second, lambda seen: b"MINE NOW" in seen)
            await second.close()

    asyncio.run(sessions())


def test_console_needs_the_serial_socket(env: Env, handler: VirtHandler) -> None:
    name = _name("noserial")
    running_vmi(env, NS, name)

    async def connect() -> int:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(env.console_url(NS, name), **env.ws_options())
            return refused.value.status

    assert asyncio.run(connect()) == 400
    status, body = asyncio.run(_refused_upgrade(env.direct_console_url(NS, name), env.direct_ws_options()["ssl"]))
    assert status == 400 and f"default/{name} has no serial console on node {NODE}" in body["message"]
    status, body = env.vmi_verb(NS, name, "console", method="GET")
    assert status == 400 and "must ask to upgrade" in body["message"]


async def _refused_upgrade(url: str, tls: ssl.SSLContext) -> tuple[int, dict]:
    """A websocket handshake by hand, to read the Status a refusal carries."""
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
               "Sec-WebSocket-Protocol": "plain.kubevirt.io"}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers, ssl=tls) as response:
            return response.status, await response.json()
