"""Container probes (startup, readiness, liveness) with exec, tcpSocket and httpGet
handlers, each kind run by its own thread while its container runs.

An exec probe runs inside the container's mount namespace and root through
nsenter, with the container's environment, as `kubectl exec` would.
"""

from __future__ import annotations

import functools
import http.client
import os
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SUCCESS, FAILURE, UNKNOWN = "success", "failure", "unknown"
_NSENTER = "nsenter"


@dataclass(frozen=True)
class ProbeTarget:
    pid: int
    pod_ip: str
    env: dict[str, str]
    named_ports: dict[str, int] = field(default_factory=dict)


def _port(value: object, target: ProbeTarget) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, str) and value in target.named_ports:
        return target.named_ports[value]
    raise ValueError(f"probe port {value!r} is not a number or a named container port")


def _exec(handler: dict[str, Any], target: ProbeTarget, timeout: float) -> bool:
    command = [str(c) for c in handler.get("command") or []]
    if not command:
        return False
    argv = [_NSENTER, f"--target={target.pid}", "--mount", "--uts", "--root", "--wd", "--", *command]
    process = subprocess.Popen(
        argv,
        env=target.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return False


def _tcp(handler: dict[str, Any], target: ProbeTarget, timeout: float) -> bool:
    host = handler.get("host") or target.pod_ip
    try:
        with socket.create_connection((host, _port(handler.get("port"), target)), timeout=timeout):
            return True
    except OSError:
        return False


@functools.cache
def _unverified_tls() -> ssl.SSLContext:
    """Like kubelet, probes do not verify the serving certificate. One context for all:
    building one loads the system's CA store, far dearer than the probe itself."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _http(handler: dict[str, Any], target: ProbeTarget, timeout: float) -> bool:
    host = handler.get("host") or target.pod_ip
    port = _port(handler.get("port"), target)
    if (handler.get("scheme") or "HTTP").upper() == "HTTPS":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=_unverified_tls()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {h.get("name", ""): h.get("value", "") for h in handler.get("httpHeaders") or []}
    headers.setdefault("User-Agent", "kube-probe/kubevirt-py")
    try:
        connection.request("GET", handler.get("path") or "/", headers=headers)
        return 200 <= connection.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def run_probe(probe: dict[str, Any], target: ProbeTarget) -> bool:
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe:
            return _exec(probe["exec"] or {}, target, timeout)
        if "tcpSocket" in probe:
            return _tcp(probe["tcpSocket"] or {}, target, timeout)
        if "httpGet" in probe:
            return _http(probe["httpGet"] or {}, target, timeout)
    except (OSError, ValueError):
        return False
    return False


class ProbeRunner:
    """Runs one probe periodically and applies its success/failure thresholds."""

    def __init__(self, probe: dict[str, Any], target: ProbeTarget, initial: str, on_change: Callable[[], None]) -> None:
        self.probe = probe
        self.target = target
        self.on_change = on_change
        self._result = initial
        self._successes = 0
        self._failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"probe-{target.pid}", daemon=True)

    @property
    def result(self) -> str:
        return self._result

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        period = max(float(self.probe.get("periodSeconds") or 10), 0.05)
        if self._stop.wait(float(self.probe.get("initialDelaySeconds") or 0)):
            return
        while not self._stop.is_set():
            self._record(run_probe(self.probe, self.target))
            if self._stop.wait(period):
                return

    def _record(self, ok: bool) -> None:
        if ok:
            self._successes, self._failures = self._successes + 1, 0
            reached = self._successes >= int(self.probe.get("successThreshold") or 1)
            new = SUCCESS if reached or self._result == SUCCESS else self._result
        else:
            self._failures, self._successes = self._failures + 1, 0
            reached = self._failures >= int(self.probe.get("failureThreshold") or 3)
            new = FAILURE if reached else self._result
        if new != self._result:
            self._result = new
            self.on_change()


class ContainerProbes:
    """The probes of one container run. Liveness and readiness wait for startup, as
    in Kubernetes, so a slow starter is neither killed nor reported ready early."""

    def __init__(self, container: dict[str, Any], target: ProbeTarget, on_change: Callable[[], None]) -> None:
        self.container = container
        self.target = target
        self.on_change = on_change
        self.startup = self._runner("startupProbe", UNKNOWN)
        self.readiness: ProbeRunner | None = None
        self.liveness: ProbeRunner | None = None
        self._stopped = False

    def _runner(self, key: str, initial: str) -> ProbeRunner | None:
        probe = self.container.get(key)
        return ProbeRunner(probe, self.target, initial, self._changed) if probe else None

    def start(self) -> None:
        if self.startup is not None:
            self.startup.start()
        else:
            self._start_after_startup()

    def _start_after_startup(self) -> None:
        self.readiness = self._runner("readinessProbe", FAILURE)
        self.liveness = self._runner("livenessProbe", SUCCESS)
        for runner in (self.readiness, self.liveness):
            if runner is not None:
                runner.start()

    def _changed(self) -> None:
        if self.startup is not None and self.startup.result == SUCCESS and self.readiness is None and not self._stopped:
            self.startup.stop()
            self._start_after_startup()
        self.on_change()

    @property
    def started(self) -> bool | None:
        return None if self.startup is None else self.startup.result == SUCCESS

    @property
    def ready(self) -> bool | None:
        if self.container.get("readinessProbe") is None:
            return None
        return self.readiness is not None and self.readiness.result == SUCCESS

    @property
    def failed(self) -> str | None:
        """Why the container must be restarted, if a liveness or startup probe says so."""
        if self.startup is not None and self.startup.result == FAILURE:
            return "startup probe failed"
        if self.liveness is not None and self.liveness.result == FAILURE:
            return "liveness probe failed"
        return None

    def stop(self) -> None:
        self._stopped = True
        for runner in (self.startup, self.readiness, self.liveness):
            if runner is not None:
                runner.stop()
