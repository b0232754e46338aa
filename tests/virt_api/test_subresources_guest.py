"""A real TCG guest behind the subresources: its serial console read through the API
server's websocket (virt-api -> NodeService.Console -> the launcher's serial socket), and
pause/unpause forwarded virt-api -> virt-handler -> launcher, seen in the VMI and on the
console (a paused guest stops counting)."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import aiohttp
import pytest

from kubevirt_api.labels import NODE_NAME_LABEL
from kubevirt_api.objects import condition_true, vmi_phase
from kubevirt_api.phases import VMIPhase
from kubevirt_api.pod_layout import launcher_socket
from tests.virt_api.test_subresources_support import (NODE, Env, env, handler,  # noqa: F401  (fixtures)
                                                  read_console_until, vmi_spec, wait_for)
from virt_handler.__main__ import VirtHandler
from virt_launcher.standalone import LauncherProcess

pytestmark = pytest.mark.slow

STORE = Path(__file__).resolve().parents[2] / "build" / "oci"
GUEST = "kubevirt-py/tiny-guest:latest"
NS = "default"
_COUNTER = re.compile(rb"KUBEVIRT-PY-GUEST COUNTER (\d+)")


def _counters(seen: bytes) -> list[int]:
    return [int(n) for n in _COUNTER.findall(seen)]


def _start_guest(env: Env, handler: VirtHandler, work: Path, name: str) -> LauncherProcess:
    """The VMI scheduled to the handler's node and its launcher: the handler starts the guest."""
    env.create("virtualmachineinstances", NS, {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "labels": {NODE_NAME_LABEL: NODE}},
        "spec": vmi_spec("128Mi", [{"name": "root", "containerDisk": {"image": GUEST}}])})
    vmi = env.patch_status("virtualmachineinstances", NS, name, {"phase": "Scheduled", "nodeName": NODE})
    socket = Path(launcher_socket(vmi["metadata"]["uid"], str(handler.sync.sockets_dir)))
    return LauncherProcess(work, vmi, STORE, handler.sync.notify_socket, cmd_socket=socket)


def _vmi(env: Env, name: str) -> dict:
    return env.get("virtualmachineinstances", NS, name)


def test_console_and_pause_of_a_real_guest(env: Env, handler: VirtHandler) -> None:
    work = Path(tempfile.mkdtemp(prefix="kv-srg-", dir="/tmp"))
    name = f"guest-{uuid.uuid4().hex[:6]}"
    launcher = _start_guest(env, handler, work, name)
    try:
        wait_for(lambda: vmi_phase(_vmi(env, name)) == VMIPhase.RUNNING, 90, "VMI Running")
        asyncio.run(_console_across_pause(env, name))
    finally:
        launcher.stop()
        shutil.rmtree(work, ignore_errors=True)


async def _console_across_pause(env: Env, name: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(env.console_url(NS, name), **env.ws_options()) as console:
            seen = await read_console_until(console, lambda s: len(_counters(s)) >= 2, timeout=90)
            counters = _counters(seen)
            assert counters == sorted(counters) and counters[-1] > counters[0]

            assert await asyncio.to_thread(env.vmi_verb, NS, name, "pause") == (200, None)
            await asyncio.to_thread(wait_for, lambda: condition_true(_vmi(env, name), "Paused"), 30, "Paused")
            status, body = await asyncio.to_thread(env.vmi_verb, NS, name, "pause")
            assert status == 409 and body["message"].endswith("VMI is already paused")
            frozen = await _counters_for(console, 2.5)
            assert len(frozen) <= 1, f"a paused guest kept counting: {frozen}"  # one may be in flight

            assert await asyncio.to_thread(env.vmi_verb, NS, name, "unpause") == (200, None)
            resumed = await read_console_until(console, lambda s: len(_counters(s)) >= 1, timeout=30)
            assert _counters(resumed)[0] > counters[-1]


async def _counters_for(console: aiohttp.ClientWebSocketResponse, seconds: float) -> list[int]:
    seen = b""
    deadline = asyncio.get_running_loop().time() + seconds
    while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await console.receive(timeout=remaining)
        except TimeoutError:
            break
        seen += message.data or b""
    return _counters(seen)
