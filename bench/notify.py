"""Notify figures: events/s of the launcher -> handler Notify stream, and domain event -> VMI
status latency on a local cluster. Prints figures only.

stream: the launcher's DomainNotifier (its own process, as a launcher is) pushes --events
        lifecycle events as fast as its acknowledgement window allows to the handler's
        NotifyServicer (served here the way virt-handler serves it: unix socket, NotifyInfo
        version service, a sink decoding each event's JSON); figure: events acknowledged per
        second, first send to last acknowledgement.
status: used by bench.run on a running test-driver VMI: PUT pause / unpause, and the time
        until a watch on the VMI shows its Paused condition set / cleared. The clock starts
        before the PUT, so the figure includes the command path (virt-api -> handler ->
        launcher -> libvirt) on top of the event path (libvirt event -> Notify -> handler ->
        status PATCH -> API server -> watch): an upper bound of event -> status.

    .venv/bin/python -m bench.notify [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from grpc_support.server import service, start_server
from grpc_support.versions import info_service
from kubevirt_grpc.notify.v1 import notify_pb2, notify_pb2_grpc
from virt_handler.notify_server import SUPPORTED_NOTIFY_VERSIONS, NotifyServicer
from virtctl.subresources import request, subresource_path

REPO = Path(__file__).resolve().parents[1]
CLIENT_TIMEOUT = 300.0
_DOMAIN = json.dumps({"metadata": {"name": "default_bench", "uid": "bench"},
                      "status": {"status": "Running", "reason": "Unpaused"}}).encode()


# -- stream ------------------------------------------------------------------------------------

async def _push(socket: Path, events: int) -> float:
    """The launcher's side: seconds from the first send to the last acknowledgement."""
    from virt_launcher.notify_client import DomainNotifier

    hello = notify_pb2.Hello(launcher_uid="bench", vmi_namespace="default", vmi_name="bench", vmi_uid="bench")
    notifier = DomainNotifier(socket, hello)
    notifier.start()
    try:
        event = notify_pb2.DomainEvent(type=notify_pb2.DOMAIN_LIFECYCLE, domain_json=_DOMAIN)
        start = time.perf_counter()
        for _ in range(events):
            event.timestamp_unix_nano = time.time_ns()
            await notifier.send(event)
        await notifier.flush(CLIENT_TIMEOUT)
        return time.perf_counter() - start
    finally:
        await notifier.close()


async def _serve_and_measure(socket: Path, events: int) -> tuple[float, int]:
    received = 0

    def sink(_hello: notify_pb2.Hello, event: notify_pb2.DomainEvent) -> None:
        nonlocal received
        json.loads(event.domain_json)  # the handler decodes every event it applies
        received += 1

    server, _ = await start_server([
        service(notify_pb2, "Notify", notify_pb2_grpc.add_NotifyServicer_to_server, NotifyServicer(sink)),
        info_service("NotifyInfo", SUPPORTED_NOTIFY_VERSIONS, "kubevirt-py-handler/0.1.0"),
    ], unix_socket=socket)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.notify", "--client", str(socket), "--events", str(events),
            cwd=REPO, stdout=subprocess.PIPE)
        try:
            out, _ = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT + 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise RuntimeError(f"notify client exited with {process.returncode}")
        return float(out.decode().strip().splitlines()[-1]), received
    finally:
        await server.stop(None)


def stream_rate(events: int) -> float:
    """Events per second through one Notify stream, every one applied and acknowledged."""
    with tempfile.TemporaryDirectory(prefix="kv-bench-n-", dir="/tmp") as tmp:
        seconds, received = asyncio.run(_serve_and_measure(Path(tmp) / "notify.sock", events))
    if received != events:
        raise RuntimeError(f"notify stream: {received} events applied of {events}")
    return events / seconds


# -- event -> status ---------------------------------------------------------------------------

class PausedWatch(threading.Thread):
    """Watches one VMI: the moments its Paused condition was seen True or not."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        super().__init__(daemon=True)
        self.custom = client.CustomObjectsApi(api)
        self.namespace, self.name = namespace, name
        self.changed = threading.Condition()
        self.paused: bool | None = None
        self.seen_at = 0.0
        self._stop_event = threading.Event()

    def _see(self, vmi: dict[str, Any]) -> None:
        conditions = (vmi.get("status") or {}).get("conditions") or []
        paused = any(c.get("type") == "Paused" and c.get("status") == "True" for c in conditions)
        with self.changed:
            if paused != self.paused:
                self.paused, self.seen_at = paused, time.monotonic()
                self.changed.notify_all()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                stream = watch.Watch()
                for event in stream.stream(self.custom.list_namespaced_custom_object, "kubevirt.io", "v1",
                                           self.namespace, "virtualmachineinstances",
                                           field_selector=f"metadata.name={self.name}", timeout_seconds=5,
                                           _request_timeout=30):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._see(event["object"])
                    if self._stop_event.is_set():
                        stream.stop()
                        break
            except Exception:  # noqa: BLE001 - a dropped watch is restarted; the wait below is bounded
                time.sleep(0.2)

    def wait(self, paused: bool, timeout: float) -> float | None:
        """The monotonic time the VMI was first seen so, or None after timeout."""
        with self.changed:
            if self.changed.wait_for(lambda: self.paused == paused, timeout):
                return self.seen_at
        return None

    def stop(self) -> None:
        self._stop_event.set()


def status_latencies(api: client.ApiClient, namespace: str, name: str, toggles: int,
                     timeout: float = 30.0) -> list[float]:
    """Seconds from each pause / unpause PUT to the VMI's Paused condition following it."""
    watcher = PausedWatch(api, namespace, name)
    watcher.start()
    latencies: list[float] = []
    try:
        if watcher.wait(False, timeout) is None:
            raise RuntimeError(f"VMI {name} not seen unpaused")
        for index in range(toggles):
            paused = index % 2 == 0
            start = time.monotonic()
            request(api, "PUT", subresource_path(namespace, "virtualmachineinstances", name,
                                                 "pause" if paused else "unpause"), {})
            seen = watcher.wait(paused, timeout)
            if seen is None:
                raise RuntimeError(f"VMI {name}: Paused={paused} not seen within {timeout:.0f}s")
            latencies.append(seen - start)
    finally:
        watcher.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)  # internal: run as the launcher
    args = parser.parse_args()
    if args.client is not None:
        print(asyncio.run(_push(args.client, args.events)), flush=True)
        return
    print(f"Notify stream, one launcher: {stream_rate(args.events):,.0f} events/s ({args.events} events)")


if __name__ == "__main__":
    main()
