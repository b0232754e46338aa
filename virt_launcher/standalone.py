"""Run a launcher outside a cluster: the launcher as a subprocess and a Notify receiver in
front of it, standing in for the handler (tests, benchmarks, debugging)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from grpc_support.server import service, start_server
from grpc_support.versions import info_service
from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc
from virt_handler.cmd_client import LauncherClient
from virt_handler.notify_server import NotifyServicer

REPO = Path(__file__).resolve().parents[1]


class NotifyReceiver:
    """The handler's Notify socket, served from a background loop; collects domain states."""

    def __init__(self, socket: Path) -> None:
        self.states: list[tuple[str, str]] = []
        # The domains of DOMAIN_STATUS events (a migration's progress and outcome under status.migration).
        self.statuses: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self.call(self._start(socket))

    async def _start(self, socket: Path):
        server, _ = await start_server([
            service(notify_pb2, "Notify", notify_pb2_grpc.add_NotifyServicer_to_server, NotifyServicer(self._sink)),
            info_service("NotifyInfo", [1])], unix_socket=socket)
        return server

    def _sink(self, hello: notify_pb2.Hello, event: notify_pb2.DomainEvent) -> None:
        if event.type == notify_pb2.DOMAIN_STATUS:
            with self._lock:
                self.statuses.append(json.loads(event.domain_json))
        if event.type == notify_pb2.DOMAIN_LIFECYCLE:
            status = json.loads(event.domain_json)["status"]
            with self._lock:
                self.states.append((status["status"], status["reason"]))

    def call(self, coroutine: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def wait_for(self, state: str, reason: str | None = None, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(s == state and (reason is None or r == reason) for s, r in self.states):
                    return
            time.sleep(0.05)
        raise AssertionError(f"no {state}/{reason} event within {timeout}s; got {self.states}")

    def close(self) -> None:
        self.call(self.server.stop(None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class LauncherProcess:
    def __init__(self, work: Path, vmi: dict[str, Any], image_store: Path, notify_socket: Path,
                 context: dict[str, Any] | None = None, cmd_socket: Path | None = None,
                 pod_root: Path | None = None, hypervisor: str = "libvirt") -> None:
        """pod_root: run the launcher in its own mount namespace where ``work`` is mounted at
        ``pod_root``, as a pod sees its volumes: two launchers of one VMI (a migration's
        source and target) then use the same path strings for different files, as they do
        on two nodes. Paths on this object stay the caller's view (under ``work``).
        hypervisor: "test" runs the domain on libvirt's test driver, where nothing boots."""
        self.work = work
        self.cmd_socket = cmd_socket or work / "launcher.sock"
        inside = pod_root or work
        launcher_socket = inside / self.cmd_socket.relative_to(work) if pod_root else self.cmd_socket
        meta = vmi["metadata"]
        args = [sys.executable, "-m", "virt_launcher", "--namespace", meta["namespace"], "--name", meta["name"],
                "--uid", meta["uid"], "--work-dir", str(inside / "vmi"), "--cmd-socket", str(launcher_socket),
                "--notify-socket", str(notify_socket), "--image-store", str(image_store), "--emulation", "tcg",
                "--hypervisor", hypervisor]
        if context is not None:
            (work / "context.json").write_text(json.dumps(context))
            args += ["--context", str(work / "context.json")]
        if pod_root is not None:
            pod_root.mkdir(parents=True, exist_ok=True)
            args = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                    'mount --bind "$1" "$2" && shift 2 && exec "$@"', "pod", str(work), str(pod_root), *args]
        self.log = open(work / "launcher.log", "ab")
        self.process = subprocess.Popen(args, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def client(self, timeout: float = 60.0) -> LauncherClient:
        deadline = time.monotonic() + timeout
        while not self.cmd_socket.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"launcher exited with {self.process.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"launcher socket missing after {timeout}s: {self.output()}")
            await asyncio.sleep(0.05)
        return await LauncherClient.connect(self.cmd_socket, timeout=120)

    def output(self) -> str:
        return (self.work / "launcher.log").read_text(errors="replace")[-3000:]

    def serial(self) -> str:
        path = self.work / "vmi" / "serial0.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_serial(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.serial()
            if text in output:
                return output
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not on the serial console within {timeout}s:\n{self.serial()[-2000:]}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
