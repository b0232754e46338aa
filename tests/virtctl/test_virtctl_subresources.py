"""virtctl's cluster verbs against a fake subresource server: an aiohttp HTTPS server on
127.0.0.1 (self-signed CA, bearer token) that records every request and serves a console
websocket echoing bytes. Each verb must send the right method, path and body; errors
must print the server's message and exit 1; usage errors exit 2; the kubeconfig and
namespace are found the way kubectl finds them."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import ssl
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import WSMsgType, web
from click.testing import CliRunner, Result

import pki
from virtctl.__main__ import main
from virtctl.clientconfig import ClusterOptions, connect
from virtctl.console import open_console
from virtctl.errors import CommandError

from tests.tempdirs import scratch_dir
from tests.wait import eventually

REPO = Path(__file__).resolve().parents[2]
TOKEN = "virtctl-test-token"
SUBPROTOCOL = "plain.kubevirt.io"
SUB = "/apis/subresources.kubevirt.io/v1/namespaces"
VMS = "/apis/kubevirt.io/v1/namespaces"
CLI_TIMEOUT = 30.0


@dataclass
class Recorded:
    method: str
    path: str
    body: Any


def status(code: int, message: str, reason: str = "") -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                              "reason": reason, "code": code}, status=code)


class FakeKubeVirtAPI:
    """The subresource API as virt-api will serve it behind the API server, in a thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        ca = pki.new_ca("virtctl-test-ca")
        self.ca_path, _ = pki.save(ca, directory, "ca")
        cert, key = pki.save(pki.issue(ca, "localhost", dns_names=("localhost",), ips=("127.0.0.1",)), directory,
                             "serving")
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(str(cert), str(key))
        self.requests: list[Recorded] = []
        self.console_bytes: list[bytes] = []
        self.console_text_frames = 0
        self.responses: dict[tuple[str, str], tuple[int, Any]] = {}
        self.console_refusals = 0  # answer 400 "not running" this many times first
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-kubevirt-api", daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        return self._runner.addresses[0][1]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return status(401, "Unauthorized", "Unauthorized")
        raw = await request.read()
        self.requests.append(Recorded(request.method, request.path, json.loads(raw) if raw else None))
        if request.path.endswith("/console"):
            return await self._console(request)
        code, body = self.responses.get((request.method, request.path), (200, {}) if request.method == "PUT"
                                        else (404, None))
        if code >= 300 or body is None:
            return status(code, body if isinstance(body, str) else f"{request.path} not found", "NotFound")
        return web.json_response(body, status=code)

    async def _console(self, request: web.Request) -> web.StreamResponse:
        if SUBPROTOCOL not in request.headers.get("Sec-WebSocket-Protocol", ""):
            return status(400, "missing subprotocol")
        if "missing" in request.path:
            return status(404, 'virtualmachineinstances.kubevirt.io "missing" not found', "NotFound")
        if self.console_refusals > 0:
            self.console_refusals -= 1
            return status(400, "Unable to connect to VirtualMachineInstance because phase is Scheduling "
                               "instead of Running", "BadRequest")
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,))
        await ws.prepare(request)
        if "hangup" in request.path:
            await ws.send_bytes(b"bye\r\n")
            await ws.close()
            return ws
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                self.console_bytes.append(message.data)
                await ws.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                self.console_text_frames += 1
        return ws

    def kubeconfig(self, path: Path, namespace: str | None = "ctx-ns", token: str = TOKEN,
                   extra_context_namespace: str = "other-ns") -> Path:
        """Two contexts on the same cluster: "main" (current) and "second"."""
        def context(name: str, ns: str | None) -> dict[str, Any]:
            ctx: dict[str, Any] = {"cluster": "fake", "user": "tester"}
            if ns:
                ctx["namespace"] = ns
            return {"name": name, "context": ctx}

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "main",
            "clusters": [{"name": "fake", "cluster": {"server": self.server,
                                                      "certificate-authority": str(self.ca_path)}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [context("main", namespace), context("second", extra_context_namespace)],
        }))
        return path


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with scratch_dir("kv-virtctl-") as path:
        yield path


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[FakeKubeVirtAPI]:
    fake = FakeKubeVirtAPI(workdir / "server")
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def api(server: FakeKubeVirtAPI) -> FakeKubeVirtAPI:
    server.requests.clear()
    server.responses.clear()
    server.console_bytes.clear()
    server.console_text_frames = 0
    server.console_refusals = 0
    return server


@pytest.fixture(scope="module")
def kubeconfig(server: FakeKubeVirtAPI, workdir: Path) -> Path:
    return server.kubeconfig(workdir / "kubeconfig")


def run(args: list[str], kubeconfig: Path | None = None, env: dict[str, str | None] | None = None,
        input: bytes | None = None) -> Result:
    # No ambient credentials leak in from the machine running the tests.
    base: dict[str, str | None] = {"KUBECONFIG": str(kubeconfig) if kubeconfig else None,
                                   "KUBERNETES_SERVICE_HOST": None, "HOME": "/nonexistent"}
    return CliRunner().invoke(main, args, env={**base, **(env or {})}, input=input)


VERB_CASES = [
    (["start", "vm1"], "virtualmachines/vm1/start", {}, "VM vm1 was scheduled to start\n"),
    (["start", "vm1", "--paused", "--dry-run"], "virtualmachines/vm1/start", {"paused": True, "dryRun": ["All"]},
     "Dry Run execution\nVM vm1 was scheduled to start\n"),
    (["stop", "vm1"], "virtualmachines/vm1/stop", {}, "VM vm1 was scheduled to stop\n"),
    (["stop", "vm1", "--force", "--grace-period=0"], "virtualmachines/vm1/stop", {"gracePeriod": 0},
     "VM vm1 was scheduled to stop\n"),
    (["restart", "vm1"], "virtualmachines/vm1/restart", {}, "VM vm1 was scheduled to restart\n"),
    (["restart", "vm1", "--force", "--grace-period", "0", "--dry-run"], "virtualmachines/vm1/restart",
     {"gracePeriodSeconds": 0, "dryRun": ["All"]}, "Dry Run execution\nVM vm1 was scheduled to restart\n"),
    (["migrate", "vm1"], "virtualmachines/vm1/migrate", {}, "VM vm1 was scheduled to migrate\n"),
    (["migrate", "vm1", "--addedNodeSelector", "zone=a,disk=ssd", "--addedNodeSelector=rack=3"],
     "virtualmachines/vm1/migrate", {"addedNodeSelector": {"zone": "a", "disk": "ssd", "rack": "3"}},
     "VM vm1 was scheduled to migrate\n"),
    (["pause", "vmi", "vmi1"], "virtualmachineinstances/vmi1/pause", {}, "VMI vmi1 was scheduled to pause\n"),
    (["unpause", "VirtualMachineInstance", "vmi1", "--dry-run"], "virtualmachineinstances/vmi1/unpause",
     {"dryRun": ["All"]}, "Dry Run execution\nVMI vmi1 was scheduled to unpause\n"),
]


@pytest.mark.parametrize(("args", "path", "body", "stdout"), VERB_CASES, ids=[" ".join(c[0]) for c in VERB_CASES])
def test_verb_sends_method_path_and_body(api: FakeKubeVirtAPI, kubeconfig: Path, args: list[str], path: str,
                                         body: dict[str, Any], stdout: str) -> None:
    result = run(args, kubeconfig)
    assert result.exit_code == 0, result.output
    assert result.stdout == stdout
    assert api.requests == [Recorded("PUT", f"{SUB}/ctx-ns/{path}", body)]


@pytest.mark.parametrize("verb", ["pause", "unpause"])
def test_pause_vm_reads_the_vm_then_targets_its_vmi(api: FakeKubeVirtAPI, kubeconfig: Path, verb: str) -> None:
    api.responses[("GET", f"{VMS}/ctx-ns/virtualmachines/vm1")] = (200, {"metadata": {"name": "vm1"},
                                                                         "spec": {"runStrategy": "Always"}})
    result = run([verb, "vm", "vm1"], kubeconfig)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"VMI vm1 was scheduled to {verb}\n"
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", f"{VMS}/ctx-ns/virtualmachines/vm1"),
        ("PUT", f"{SUB}/ctx-ns/virtualmachineinstances/vm1/{verb}")]


def test_pause_of_a_halted_vm_says_it_is_not_set_to_run(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    api.responses[("GET", f"{VMS}/ctx-ns/virtualmachines/vm1")] = (200, {"spec": {"runStrategy": "Halted"}})
    api.responses[("PUT", f"{SUB}/ctx-ns/virtualmachineinstances/vm1/pause")] = (404, "vmi vm1 not found")
    result = run(["pause", "vm", "vm1"], kubeconfig)
    assert result.exit_code == 1
    assert result.stderr == "Error pausing VirtualMachineInstance vm1. VirtualMachine vm1 is not set to run\n"


def test_pause_of_a_missing_vm_reports_the_vm(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    result = run(["pause", "vm", "nope"], kubeconfig)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error getting VirtualMachine nope: ")
    assert [r.method for r in api.requests] == ["GET"]


@pytest.mark.parametrize(("args", "prefix"), [
    (["start", "nope"], "Error starting VirtualMachine nope: "),
    (["stop", "nope", "--force", "--grace-period=0"], "Error force stopping VirtualMachine nope: "),
    (["migrate", "nope"], "Error migrating VirtualMachine nope: "),
    (["unpause", "vmi", "nope"], "Error unpausing VirtualMachineInstance nope: "),
])
def test_api_errors_print_the_server_message_and_exit_1(api: FakeKubeVirtAPI, kubeconfig: Path, args: list[str],
                                                        prefix: str) -> None:
    message = 'virtualmachines.kubevirt.io "nope" not found'
    for path in ("virtualmachines/nope/start", "virtualmachines/nope/stop", "virtualmachines/nope/migrate",
                 "virtualmachineinstances/nope/unpause"):
        api.responses[("PUT", f"{SUB}/ctx-ns/{path}")] = (404, message)
    result = run(args, kubeconfig)
    assert result.exit_code == 1
    assert result.stderr == prefix + message + "\n"
    assert result.stdout == ""
    assert isinstance(result.exception, SystemExit)


def test_conflict_message_is_passed_through(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    api.responses[("PUT", f"{SUB}/ctx-ns/virtualmachines/vm1/start")] = (409, "VM is already running")
    result = run(["start", "vm1"], kubeconfig)
    assert (result.exit_code, result.stderr) == (1, "Error starting VirtualMachine vm1: VM is already running\n")


def test_a_wrong_token_is_reported_not_raised(api: FakeKubeVirtAPI, workdir: Path) -> None:
    config = api.kubeconfig(workdir / "bad-token" / "config", token="wrong")
    result = run(["stop", "vm1"], config)
    assert (result.exit_code, result.stderr) == (1, "Error stopping VirtualMachine vm1: Unauthorized\n")


def test_an_unreachable_server_is_reported_not_raised(api: FakeKubeVirtAPI, workdir: Path) -> None:
    config = api.kubeconfig(workdir / "down" / "config")
    config.write_text(config.read_text().replace(api.server, "https://127.0.0.1:9"))
    result = run(["start", "vm1"], config)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error starting VirtualMachine vm1: cannot reach the server at "
                                    "https://127.0.0.1:9")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ["stop", "vm1", "--grace-period=0"],
    ["restart", "vm1", "--force"],
    ["pause", "vmx", "vm1"],
    ["start"],
    ["start", "a", "b"],
    ["migrate", "vm1", "--addedNodeSelector", "novalue"],
    ["console", "vmi1", "--timeout", "-1"],
])
def test_usage_errors_exit_2_without_a_request(api: FakeKubeVirtAPI, kubeconfig: Path, args: list[str]) -> None:
    result = run(args, kubeconfig)
    assert result.exit_code == 2, result.output
    assert api.requests == []


def test_no_credentials_anywhere_is_a_clear_error(workdir: Path) -> None:
    result = run(["start", "vm1"], None, env={"HOME": str(workdir / "empty-home")})
    assert result.exit_code == 1
    assert result.stderr.startswith("no cluster credentials found; tried: ")
    assert "Pass --kubeconfig or set KUBECONFIG" in result.stderr


# Kubeconfig discovery and the namespace, as kubectl: flag, then $KUBECONFIG, then ~/.kube/config.

def test_explicit_kubeconfig_wins_over_the_environment(api: FakeKubeVirtAPI, workdir: Path) -> None:
    explicit = api.kubeconfig(workdir / "explicit" / "config", namespace="explicit-ns")
    result = run(["--kubeconfig", str(explicit), "start", "vm1"], None,
                 env={"KUBECONFIG": str(workdir / "does-not-exist")})
    assert result.exit_code == 0, result.output
    assert api.requests[0].path == f"{SUB}/explicit-ns/virtualmachines/vm1/start"


def test_kubeconfig_flag_after_the_verb(api: FakeKubeVirtAPI, workdir: Path) -> None:
    explicit = api.kubeconfig(workdir / "after" / "config", namespace="after-ns")
    result = run(["stop", "vm1", "--kubeconfig", str(explicit)], None)
    assert result.exit_code == 0, result.output
    assert api.requests[0].path == f"{SUB}/after-ns/virtualmachines/vm1/stop"


def test_kubeconfig_from_the_environment_variable(api: FakeKubeVirtAPI, workdir: Path) -> None:
    from_env = api.kubeconfig(workdir / "env" / "config", namespace="env-ns")
    result = run(["start", "vm1"], None, env={"KUBECONFIG": f"{workdir / 'missing'}{os.pathsep}{from_env}"})
    assert result.exit_code == 0, result.output
    assert api.requests[0].path == f"{SUB}/env-ns/virtualmachines/vm1/start"


def test_kubeconfig_from_home(api: FakeKubeVirtAPI, workdir: Path) -> None:
    home = workdir / "home"
    api.kubeconfig(home / ".kube" / "config", namespace="home-ns")
    result = run(["start", "vm1"], None, env={"HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert api.requests[0].path == f"{SUB}/home-ns/virtualmachines/vm1/start"


@pytest.mark.parametrize(("args", "namespace"), [
    (["-n", "flag-ns", "start", "vm1"], "flag-ns"),
    (["start", "vm1", "--namespace", "flag-ns"], "flag-ns"),
    (["-n", "first", "start", "vm1", "-n", "second"], "second"),
    (["--context", "second", "start", "vm1"], "other-ns"),
    (["start", "vm1", "--context", "second", "-n", "flag-ns"], "flag-ns"),
])
def test_namespace_flag_and_context(api: FakeKubeVirtAPI, kubeconfig: Path, args: list[str],
                                    namespace: str) -> None:
    result = run(args, kubeconfig)
    assert result.exit_code == 0, result.output
    assert api.requests[0].path == f"{SUB}/{namespace}/virtualmachines/vm1/start"


def test_namespace_defaults_to_default(api: FakeKubeVirtAPI, workdir: Path) -> None:
    config = api.kubeconfig(workdir / "no-ns" / "config", namespace=None)
    result = run(["start", "vm1"], config)
    assert result.exit_code == 0, result.output
    assert api.requests[0].path == f"{SUB}/default/virtualmachines/vm1/start"


def test_unknown_context_is_a_clear_error(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    result = run(["--context", "nope", "start", "vm1"], kubeconfig)
    assert result.exit_code == 1
    assert "nope" in result.stderr and "Traceback" not in result.output
    assert api.requests == []


# console: the websocket subresource, from a script (stdin is a pipe).

def console(args: list[str], kubeconfig: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`virtctl console` in a subprocess; stdin None: a pipe whose writer stays open (no EOF)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(REPO)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    command = [sys.executable, "-m", "virtctl", "console", *args]
    if stdin is not None:
        return subprocess.run(command, input=stdin, capture_output=True, env=env, cwd=REPO, timeout=CLI_TIMEOUT)
    read_end, write_end = os.pipe()
    try:
        return subprocess.run(command, stdin=read_end, capture_output=True, env=env, cwd=REPO, timeout=CLI_TIMEOUT)
    finally:
        os.close(read_end)
        os.close(write_end)


def console_session(args: list[str], kubeconfig: Path, api: FakeKubeVirtAPI,
                    data: bytes) -> subprocess.CompletedProcess[bytes]:
    """Send ``data``, wait until the guest has it (and so has echoed it), then end stdin:
    the echo must be on stdout however slow the machine is."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(REPO)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    command = [sys.executable, "-m", "virtctl", "console", *args]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          cwd=REPO) as process:
        try:
            assert process.stdin is not None
            process.stdin.write(data)
            process.stdin.flush()
            eventually(lambda: b"".join(api.console_bytes) == data, CLI_TIMEOUT, "input reaches the guest")
            out, err = process.communicate(timeout=CLI_TIMEOUT)
        finally:
            process.kill()
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_console_copies_stdin_to_the_guest_and_the_guest_to_stdout(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    result = console_session(["vmi1"], kubeconfig, api, b"root\nuname -a\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"root\nuname -a\n"
    assert b"".join(api.console_bytes) == b"root\nuname -a\n"
    assert api.console_text_frames == 0
    assert result.stderr.decode() == "Successfully connected to vmi1 console. The escape sequence is ^]\n"
    assert api.requests[-1] == Recorded("GET", f"{SUB}/ctx-ns/virtualmachineinstances/vmi1/console", None)


def test_console_escape_byte_ends_the_session_and_is_not_sent(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    started = time.monotonic()
    result = console(["vmi1"], kubeconfig, b"ls\n\x1dnever sent\n")
    assert result.returncode == 0, result.stderr
    assert b"".join(api.console_bytes) == b"ls\n"
    assert time.monotonic() - started < CLI_TIMEOUT


def test_console_ends_when_the_server_hangs_up(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    result = console(["hangup"], kubeconfig)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"bye\r\n"


def test_console_waits_while_the_vmi_is_not_running(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    api.console_refusals = 1
    result = console_session(["vmi1", "--timeout=1"], kubeconfig, api, b"hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hi\n"
    assert [r.path.endswith("/console") for r in api.requests].count(True) == 2


def test_console_of_a_missing_vmi_prints_the_server_message(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    result = console(["missing"], kubeconfig, b"")
    assert result.returncode == 1
    assert result.stderr.decode() == ('Error connecting to the console of VirtualMachineInstance missing: '
                                      'virtualmachineinstances.kubevirt.io "missing" not found\n')


def test_console_gives_up_after_the_timeout(api: FakeKubeVirtAPI, kubeconfig: Path) -> None:
    api.console_refusals = 1000
    cluster = connect(ClusterOptions(kubeconfig=str(kubeconfig)))
    started = time.monotonic()
    with pytest.raises(CommandError, match="Timeout trying to connect to the virtual machine instance"):
        open_console(cluster, "vmi1", wait_seconds=1.5)
    assert 1.4 <= time.monotonic() - started < 5.0


def test_interactive_console_uses_raw_mode_escapes_and_restores_the_terminal(api: FakeKubeVirtAPI,
                                                                            kubeconfig: Path) -> None:
    master, slave = pty.openpty()
    original = termios.tcgetattr(slave)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(REPO)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    try:
        with subprocess.Popen([sys.executable, "-m", "virtctl", "console", "vmi1"], stdin=slave,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO) as process:
            try:
                eventually(lambda: not termios.tcgetattr(slave)[3] & termios.ICANON, CLI_TIMEOUT, "raw mode")
                os.write(master, b"hi\x03")  # Ctrl+C is a byte for the guest, not a signal
                eventually(lambda: b"".join(api.console_bytes) == b"hi\x03", 10, "keys reach the guest")
                os.write(master, b"\x1d")
                assert process.wait(10) == 0
                assert process.stdout is not None and process.stdout.read() == b"hi\x03"
            finally:
                process.kill()
        assert termios.tcgetattr(slave) == original
    finally:
        os.close(master)
        os.close(slave)
