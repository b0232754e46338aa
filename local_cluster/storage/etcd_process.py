"""Run Debian's etcd as a child process for the local control plane.

One single-member etcd per state directory, reachable only on 127.0.0.1. The data
directory lives inside the state directory and is reused, so stopping and starting
again keeps every key and the revision counter. Auto-compaction is off: the API
server compacts explicitly, as kube-apiserver does.

The process is managed with plain ``subprocess`` (not asyncio's), so an
EtcdProcess started under one event loop can be stopped under another, or without
any loop; the async methods only move the blocking waits to a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import grpc

from kubevirt_grpc.etcd.v3 import etcd_pb2, etcd_pb2_grpc

# Where Debian's etcd-server package installs the binary, for when PATH lacks /usr/bin.
DEBIAN_ETCD = "/usr/bin/etcd"

MEMBER_NAME = "local"
LOG_TAIL_LINES = 15
# A busy machine can take several seconds to elect the single member; 20 s means
# something is really wrong.
DEFAULT_START_TIMEOUT = 20.0
DEFAULT_STOP_TIMEOUT = 10.0
# Ports are picked free and released before etcd binds them, so another process
# can grab one in between; a few retries make that race harmless.
PORT_ATTEMPTS = 3


# The first probes hit a port etcd has not bound yet; gRPC's default reconnect
# backoff (1 s and growing) would then dominate the start time.
_PROBE_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
]


class EtcdError(RuntimeError):
    pass


class EtcdNotFound(EtcdError):
    pass


class EtcdStartError(EtcdError):
    pass


def find_etcd(binary: str | os.PathLike[str] | None = None) -> str:
    """The etcd executable to run: ``binary`` if given, else etcd on PATH, else Debian's."""
    if binary is not None:
        path = Path(binary)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise EtcdNotFound(f"etcd binary {str(path)!r} does not exist or is not executable")
    found = shutil.which("etcd") or (DEBIAN_ETCD if os.access(DEBIAN_ETCD, os.X_OK) else None)
    if found is None:
        raise EtcdNotFound("etcd binary not found on PATH nor at /usr/bin/etcd; "
                           "install Debian's etcd-server package (./build.sh does)")
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Go's listeners do, so leftover TIME_WAIT connections of the previous
        # etcd do not make its port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open together so the kernel hands out distinct ports.
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _summarize_log(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The lines of one etcd run that explain a failure.

    etcd logs JSON lines (zap); for errors and worse keep the message and the
    fields naming what went wrong, drop the Go stack traces that follow a panic.
    Falls back to the raw tail when nothing stands out."""
    notable: list[str] = []
    raw: list[str] = []
    for line in text.splitlines():
        if line.startswith("goroutine "):
            break  # the rest is a Go stack dump
        raw.append(line[:300])
        entry = _json_entry(line)
        if entry is not None and entry.get("level") in _NOTABLE_LEVELS:
            fields = ", ".join(f"{k}={entry[k]}" for k in _NOTABLE_FIELDS if k in entry)
            notable.append(f"{entry['level']}: {entry.get('msg', '')}" + (f" ({fields})" if fields else ""))
        elif entry is None and re.match(r"^\S+ \S+ [EC] \| ", line):
            notable.append(line[:300])  # etcd's older text logger, used before zap starts
    return "\n".join((notable or raw)[-lines:])


_NOTABLE_LEVELS = {"error", "dpanic", "panic", "fatal"}
_NOTABLE_FIELDS = ("error", "path", "data-dir", "address")


def _json_entry(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _die_with_parent_prefix() -> list[str]:
    """A command prefix making the kernel SIGKILL etcd when the thread that started
    it dies, so a killed test run or API server leaves no stray etcd behind.

    util-linux's setpriv does it without a preexec_fn (unsafe in a threaded process
    such as one running gRPC). The signal is tied to the forking *thread*, so it is
    only asked for from the main thread, whose end is the process's end."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


class EtcdProcess:
    """A single-member etcd with its data in ``state_dir/data`` and its log in
    ``state_dir/etcd.log``.

    Use ``await start()`` / ``await stop()``, ``async with``, or the blocking
    ``start_blocking()`` / ``stop_blocking()`` and ``with``.
    """

    def __init__(self, state_dir: str | os.PathLike[str], *, binary: str | os.PathLike[str] | None = None,
                 start_timeout: float = DEFAULT_START_TIMEOUT, stop_timeout: float = DEFAULT_STOP_TIMEOUT,
                 quota_backend_bytes: int = 2 * 1024**3, snapshot_count: int = 10_000,
                 progress_notify_interval: float = 0.5) -> None:
        self.state_dir = Path(state_dir)
        self.data_dir = self.state_dir / "data"
        self.log_path = self.state_dir / "etcd.log"
        self._binary = binary
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.quota_backend_bytes = quota_backend_bytes
        self.snapshot_count = snapshot_count
        self.progress_notify_interval = progress_notify_interval
        self.client_port = 0
        self.peer_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._attempts_left = PORT_ATTEMPTS

    # ---- addresses ----

    @property
    def endpoint(self) -> str:
        """host:port for gRPC clients (EtcdStore)."""
        self._require_running()
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        self._require_running()
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def _require_running(self) -> None:
        if self._proc is None:
            raise EtcdError(f"etcd for {self.data_dir} is not started")

    # ---- lifecycle ----

    async def start(self) -> None:
        # Popen in the caller's thread: the parent-death signal is bound to the
        # forking thread, and a worker thread of the default executor may exit.
        self._launch_first()
        try:
            await asyncio.to_thread(self._wait_healthy_with_retries)
        except BaseException:
            await asyncio.to_thread(self.stop_blocking)
            raise

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_blocking)

    def start_blocking(self) -> None:
        self._launch_first()
        try:
            self._wait_healthy_with_retries()
        except BaseException:
            self.stop_blocking()
            raise

    def stop_blocking(self) -> None:
        """SIGTERM, then SIGKILL if etcd has not exited within ``stop_timeout``."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=self.stop_timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> EtcdProcess:
        self.start_blocking()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_blocking()

    async def __aenter__(self) -> EtcdProcess:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ---- internals ----

    def _launch_first(self) -> None:
        if self._proc is not None:
            raise EtcdError(f"etcd for {self.data_dir} is already started (pid {self._proc.pid})")
        binary = find_etcd(self._binary)
        self._prepare_dirs()
        self._attempts_left = PORT_ATTEMPTS
        self._launch(binary)

    def _wait_healthy_with_retries(self) -> None:
        while True:
            try:
                self._wait_healthy()
                return
            except _PortTaken:
                self._attempts_left -= 1
                if self._attempts_left <= 0:
                    raise self._start_error("its ports kept being taken by other processes") from None
                self.stop_blocking()
                self.client_port = self.peer_port = 0
                self._launch(find_etcd(self._binary))

    def _prepare_dirs(self) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            if self.data_dir.exists() and not self.data_dir.is_dir():
                raise EtcdStartError(f"etcd data dir {self.data_dir} exists but is not a directory")
            # etcd wants its data private; only tighten a directory we create.
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
        except EtcdStartError:
            raise
        except OSError as exc:
            raise EtcdStartError(f"cannot prepare etcd data dir {self.data_dir}: {exc}") from exc

    def _choose_ports(self) -> None:
        # Reuse the previous ports after a restart when possible, so clients that
        # kept the old endpoint reconnect by themselves.
        if self.client_port and self.peer_port and _port_is_free(self.client_port) \
                and _port_is_free(self.peer_port):
            return
        self.client_port, self.peer_port = _free_ports(2)

    def _command(self, binary: str) -> list[str]:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            binary,
            f"--name={MEMBER_NAME}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            # Only read on first boot; later boots take membership from the data dir.
            f"--initial-cluster={MEMBER_NAME}={peer}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=kubevirt-py-local",
            "--auto-compaction-retention=0",
            # A single voter never loses its leadership to a slow peer, so short
            # raft timers only make the first election (and so start) faster.
            "--heartbeat-interval=50",
            "--election-timeout=300",
            f"--quota-backend-bytes={self.quota_backend_bytes}",
            f"--snapshot-count={self.snapshot_count}",
            # etcd's own periodic progress notifications are ordered with the
            # watcher's events; answers to WatchProgressRequest are not on releases
            # as old as Debian's 3.4.23, so these are what EtcdStore's idle watches
            # get their progress batches from.
            f"--experimental-watch-progress-notify-interval={self._progress_interval_flag()}",
            "--logger=zap",
            "--log-outputs=stderr",
        ]

    def _progress_interval_flag(self) -> str:
        return f"{max(1, round(self.progress_notify_interval * 1000))}ms"

    def _launch(self, binary: str) -> None:
        self._choose_ports()
        # etcd refuses to start when an ETCD_* variable duplicates a flag we pass.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        command = [*_die_with_parent_prefix(), *self._command(binary)]
        try:
            self._log = self.log_path.open("ab")
            self._log_offset = self._log.tell()
            self._log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: "
                            f"{' '.join(command)}\n".encode())
            self._log.flush()
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                env=env, cwd=self.state_dir, close_fds=True)
        except OSError as exc:
            if self._log is not None:
                self._log.close()
                self._log = None
            raise EtcdStartError(f"cannot start etcd for data dir {self.data_dir}: {exc}") from exc

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        unhealthy = "it never answered"
        with grpc.insecure_channel(f"127.0.0.1:{self.client_port}", options=_PROBE_OPTIONS) as channel:
            maintenance = etcd_pb2_grpc.MaintenanceStub(channel)
            while True:
                code = self._proc.poll()
                if code is not None:
                    if "address already in use" in self._this_run_log():
                        raise _PortTaken()
                    raise self._start_error(f"it exited with status {code}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._start_error(f"it was not healthy within {self.start_timeout:g} s ({unhealthy})")
                unhealthy = self._unhealthy(maintenance, min(1.0, remaining))
                if not unhealthy:
                    return
                time.sleep(0.05)

    @staticmethod
    def _unhealthy(maintenance: etcd_pb2_grpc.MaintenanceStub, timeout: float) -> str:
        """Why etcd cannot serve yet, or "" when it can."""
        try:
            status = maintenance.Status(etcd_pb2.StatusRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            return f"status call failed: {exc.code().name}"  # type: ignore[attr-defined]
        if status.errors:
            # e.g. a NOSPACE alarm left by an earlier run: etcd answers but refuses writes.
            return f"etcd reports: {'; '.join(status.errors)}"
        # A member without a leader answers Status but cannot serve writes yet.
        return "" if status.leader else "no leader elected yet"

    def _this_run_log(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"

    def _start_error(self, what: str) -> EtcdStartError:
        return EtcdStartError(
            f"etcd with data dir {self.data_dir} failed to start: {what}. "
            f"From its log ({self.log_path}):\n{_summarize_log(self._this_run_log())}")


class _PortTaken(Exception):
    pass
