"""Live migration of a TCG guest between two virt-launchers through the MigrationTunnel,
against the same migration through a plain unix relay, measured in one run. Prints figures
only.

    .venv/bin/python -m bench.migration [--rounds 3] [--memory-mib 256] [--dirty-mib 32]
                                        [--no-dirty] [--insecure]

Every migration moves a running guest from one launcher to a fresh one, each launcher in its
own mount namespace as two pods on two nodes (same path strings, different files), each with
its own libvirtd and QEMU:

raw:    source QEMU/libvirtd -> the VMI's migration sockets -> virt_launcher.migration.UnixRelay
        (one per channel, in this process) -> the target launcher's sockets
tunnel: source QEMU/libvirtd -> SourceTunnel (one per channel, in this process, as the source
        virt-handler) -> NodeService.MigrationTunnel over loopback TCP, mutual TLS with
        handler-style certificates (pki.cluster_ca) unless --insecure -> a second process
        serving the real NodeServiceServicer (TunnelTarget, as the target virt-handler) ->
        the target launcher's sockets

The channels are kubevirt_api.pod_layout.MIGRATION_CHANNELS. Each round migrates once per
mode (raw first in odd rounds, tunnel first in even ones) and the guest hops on: launcher
0 -> 1 (raw) -> 2 (tunnel) -> 3 (tunnel) -> 4 (raw) ..., so a guest boots only once per
workload. Two workloads, one guest each:

idle:   the tiny guest printing its serial counter (most of its RAM is zero pages, which
        QEMU sends as a flag, not 4 KiB);
dirty:  the same guest whose user-data rewrites ``--dirty-mib`` MiB of non-zero tmpfs pages
        in a loop (guest RAM dirtied as fast as the TCG guest can copy; ``--dirty-pause``
        seconds between passes slows it down).

Figures per migration, all but the first from the source launcher's completed report
(libvirt's jobStats of the finished job): total time (Migrate call -> that report arriving on
the launcher's Notify stream; it includes the source libvirt stopping its QEMU after the
switchover), libvirt's job time, downtime (progress.downtimeMilliseconds), data processed
(memory, plus the disks only the source pod has, which go over the block channel), memory
iterations, throughput (QEMU's transfer rate). After each migration the target is finalized
and the guest's counter must go on there. p50 and max over ``--rounds`` rounds; ratios are
tunnel p50 / raw p50.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.peer_process import peer_process
from grpc_support.server import service, start_server
from guest_image.markers import COUNTER, USERDATA_DONE, userdata_exit_code
from kubevirt_api.pod_layout import MIGRATION_CHANNELS, migration_socket_name
from kubevirt_grpc.cmd.v1 import cmd_pb2
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from kubevirt_grpc.notify.v1 import notify_pb2
from pki import load, new_ca, save
from pki.cluster_ca import channel_credentials, server_credentials
from virt_handler.cmd_client import LauncherClient
from virt_handler.migration_tunnel import SourceTunnel, TunnelStats, tunnel_channel
from virt_handler.node_service import NodeServiceServicer
from virt_launcher.migration import UnixRelay
from virt_launcher.standalone import REPO, LauncherProcess, NotifyReceiver

STORE = REPO / "build" / "oci"
GUEST = "kubevirt-py/tiny-guest:latest"
SOURCE_NODE, TARGET_NODE = "bench-source", "bench-target"
MIB = 1 << 20
MODES = ("raw", "tunnel")
DIRTIED = "KUBEVIRT-PY-BENCH DIRTIED"  # the dirty workload's line after each pass
STEP_SECONDS = 120.0  # any single wait that is not the migration itself
# Every launcher this run started, for the last-resort stop (the event loop may be gone).
STARTED: list[Launcher] = []


def _channel_enum(name: str) -> int | None:
    """The TunnelChannel of a pod_layout channel name, None if this proto has none."""
    try:
        return pb.TunnelChannel.Value(name.upper())
    except ValueError:
        return None


def _counters(serial: str) -> list[int]:
    return [int(n) for n in re.findall(rf"{COUNTER} (\d+)", serial)]


def _passes(serial: str) -> int:
    found = re.findall(rf"{DIRTIED} (\d+)", serial)
    return int(found[-1]) if found else 0


def _dirty_script(mib: int, pause: float) -> str:
    # /tmp is tmpfs: its pages are guest RAM. The source file is not zeros (QEMU sends zero
    # pages as a flag); rewriting the same file in place dirties the same pages again.
    return ("#!/bin/sh\n"
            f"yes kubevirt-py-dirty-page | head -c {mib * MIB} > /tmp/src\n"
            f"[ \"$(wc -c < /tmp/src)\" -eq {mib * MIB} ] || exit 3\n"
            "(n=0; while :; do dd if=/tmp/src of=/tmp/dirty bs=1M conv=notrunc 2>/dev/null; n=$((n + 1));"
            f" echo \"{DIRTIED} $n\" >/dev/console; sleep {pause}; done) </dev/null >/dev/null 2>&1 &\n")


def _vmi(name: str, memory_mib: int, user_data: str) -> dict[str, Any]:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": "default", "uid": f"bench-{name}"},
            "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": f"{memory_mib}Mi"}}},
                     "terminationGracePeriodSeconds": 0,
                     "volumes": [{"name": "root", "containerDisk": {"image": GUEST}},
                                 {"name": "cloudinit", "cloudInitNoCloud": {"userData": user_data}}]}}


# -- the target handler: its own process, as on another node ----------------------------------

async def serve_target(work: Path, mutual_tls: bool) -> None:
    """The target virt-handler's NodeService; the parent registers each migration's target
    sockets through stdin (one JSON line per request, one line back)."""
    servicer = NodeServiceServicer(TARGET_NODE, "qemu", work, lambda: 0)
    services = [service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server, servicer)]
    ca = load(work, "ca") if mutual_tls else None
    credentials = server_credentials(ca, TARGET_NODE, addresses=("127.0.0.1",)) if ca else None
    server, port = await start_server(services, tcp_address="127.0.0.1:0", credentials=credentials)
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):  # until the parent closes it
            request = json.loads(line)
            answer: Any = "ok"
            if request["op"] == "register":
                for name, path in request["channels"].items():
                    servicer.migration_targets.register(request["migration"], pb.TunnelChannel.Value(name), path,
                                                        request["vmi_uid"])
            elif request["op"] == "unregister":
                servicer.migration_targets.unregister(request["migration"])
                counters = servicer.tunnels.stats.of_migration(request["migration"])
                answer = {c.channel: {"sent": c.sent, "received": c.received, "failures": c.failures,
                                      "last_error": c.last_error} for c in counters}
                servicer.tunnels.stats.forget(request["migration"])
            print(json.dumps(answer), flush=True)
    finally:
        await server.stop(None)


class TargetHandler:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    async def call(self, request: dict[str, Any]) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        if not line:
            raise RuntimeError(f"the target handler process exited ({self.process.returncode})")
        return json.loads(line)


@contextlib.asynccontextmanager
async def target_handler(work: Path, mutual_tls: bool) -> AsyncIterator[TargetHandler]:
    argv = [sys.executable, "-m", "bench.migration", "--target-handler", str(work)]
    if not mutual_tls:
        argv.append("--insecure")
    async with peer_process(argv, cwd=REPO) as (process, port):
        yield TargetHandler(process, port)


# -- the two ways to join the launchers' migration sockets ------------------------------------

@contextlib.asynccontextmanager
async def raw_wiring(source_dir: Path, target_dir: Path) -> AsyncIterator[dict[str, Any]]:
    relays = [UnixRelay(source_dir / migration_socket_name(c), target_dir / migration_socket_name(c))
              for c in MIGRATION_CHANNELS]
    try:
        for relay in relays:
            await relay.start()
        yield {}
    finally:
        for relay in relays:
            await relay.close()


@contextlib.asynccontextmanager
async def tunnel_wiring(handler: TargetHandler, credentials: Any, migration: str, vmi: dict[str, Any],
                        source_dir: Path, target_dir: Path) -> AsyncIterator[dict[str, Any]]:
    """As the two handlers wire a migration: the target routes each channel to its launcher's
    socket, the source listens on the VMI's migration sockets with one SourceTunnel each."""
    channels = {c: _channel_enum(c) for c in MIGRATION_CHANNELS}
    missing = [c for c, e in channels.items() if e is None]
    if missing:
        raise RuntimeError(f"pod_layout channels {missing} have no NodeService TunnelChannel")
    meta = vmi["metadata"]
    await handler.call({"op": "register", "migration": migration, "vmi_uid": meta["uid"],
                        "channels": {pb.TunnelChannel.Name(e): str(target_dir / migration_socket_name(c))
                                     for c, e in channels.items()}})
    figures: dict[str, Any] = {}
    peer = tunnel_channel(f"127.0.0.1:{handler.port}", credentials, target_name=TARGET_NODE)
    stats = TunnelStats()
    ref = pb.VMIRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])
    tunnels = [SourceTunnel(peer, migration, e, source_dir / migration_socket_name(c), vmi=ref, stats=stats,
                            socket_mode=0o600) for c, e in channels.items()]
    try:
        for tunnel in tunnels:
            await tunnel.start()
        yield figures
        for tunnel in tunnels:  # libvirt closed its connections when migrateToURI3 returned
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tunnel.wait_idle(), 10)
    finally:
        for tunnel in tunnels:
            await tunnel.close()
        await peer.close()
        target = await handler.call({"op": "unregister", "migration": migration})
        figures["source"] = {c.channel: {"sent": c.sent, "received": c.received, "failures": c.failures,
                                         "last_error": c.last_error} for c in stats.of_migration(migration)}
        figures["target"] = target


# -- a guest hopping from launcher to launcher ------------------------------------------------

class Receiver(NotifyReceiver):
    """The handler's Notify socket; keeps when each migration report arrived."""

    def __init__(self, socket: Path) -> None:
        self.reports: list[tuple[float, dict[str, Any]]] = []
        super().__init__(socket)

    def _sink(self, hello: Any, event: Any) -> None:
        received = time.monotonic()
        super()._sink(hello, event)
        if event.type == notify_pb2.DOMAIN_STATUS:
            migration = (json.loads(event.domain_json).get("status") or {}).get("migration")
            if migration:
                self.reports.append((received, migration))

    async def outcome(self, migration: str, timeout: float) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for received, report in list(self.reports):
                if report.get("migrationUid") == migration and (report.get("completed") or report.get("failed")):
                    return received, report
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no outcome of migration {migration} within {timeout:.0f}s")


@dataclass
class Launcher:
    work: Path
    process: LauncherProcess
    receiver: Receiver
    client: LauncherClient | None = None
    stopped: bool = False

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
            self.client = None
        await asyncio.to_thread(self.stop)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            try:
                self.process.stop()
            finally:
                self.receiver.close()


@dataclass
class Result:
    workload: str
    mode: str
    ok: bool
    total: float = 0.0               # Migrate call -> completed report (s)
    call: float = 0.0                # the Migrate call alone (s)
    downtime_ms: float = 0.0
    processed: int = 0
    iterations: int = 0
    elapsed_ms: float = 0.0          # libvirt's job time (includes starting the target QEMU)
    transfer_rate: int = 0           # QEMU's transfer rate (bytes/s over its transfer time)
    tunnel_bytes: int = 0            # through the source's SourceTunnels, all channels, both ways
    reason: str = ""

    @property
    def throughput(self) -> float:  # MiB/s
        return self.transfer_rate / MIB


@dataclass
class Guest:
    root: Path
    name: str
    vmi: dict[str, Any]
    launchers: list[Launcher] = field(default_factory=list)
    current: Launcher | None = None

    @property
    def pod(self) -> Path:
        return self.root / self.name / "pod"

    def _launcher(self) -> Launcher:
        work = self.root / self.name / f"launcher{len(self.launchers)}"
        work.mkdir(parents=True)
        receiver = Receiver(work / "notify.sock")
        try:
            process = LauncherProcess(work, self.vmi, STORE, work / "notify.sock", pod_root=self.pod)
        except BaseException:
            receiver.close()
            raise
        launcher = Launcher(work, process, receiver)
        self.launchers.append(launcher)
        STARTED.append(launcher)
        return launcher

    async def boot(self) -> float:
        launcher = self._launcher()
        started = time.monotonic()
        launcher.client = await launcher.process.client()
        await launcher.client.sync(self.vmi)
        serial = await asyncio.to_thread(launcher.process.wait_serial, USERDATA_DONE, STEP_SECONDS)
        codes = [userdata_exit_code(line) for line in serial.splitlines()]
        if any(code not in (None, 0) for code in codes):
            raise RuntimeError(f"{self.name}: the guest's user-data failed:\n{serial[-1500:]}")
        await asyncio.to_thread(launcher.process.wait_serial, f"{COUNTER} 2", STEP_SECONDS)
        self.current = launcher
        return time.monotonic() - started

    async def dirty_rate(self, seconds: float, mib: int) -> float:
        """MiB/s the guest's dirty workload rewrites, from its pass lines over ``seconds``."""
        assert self.current is not None
        first = _passes(self.current.process.serial())
        started = time.monotonic()
        await asyncio.sleep(seconds)
        passes = _passes(self.current.process.serial()) - first
        return passes * mib / (time.monotonic() - started)

    async def migrate(self, mode: str, wiring: Callable[[str, dict[str, Any], Path, Path], Any],
                      options: cmd_pb2.MigrationOptions, timeout: float) -> Result:
        source = self.current
        assert source is not None and source.client is not None
        index = len(self.launchers)
        migration = f"{self.name}-{index}-{mode}"
        vmi = {**self.vmi, "status": {"migrationState": {"migrationUid": migration, "sourceNode": SOURCE_NODE,
                                                         "targetNode": TARGET_NODE}}}
        target = self._launcher()
        target.client = await target.process.client()
        await target.client.sync_migration_target(vmi)
        async with wiring(migration, vmi, source.work, target.work) as figures:
            started = time.monotonic()
            await source.client.migrate(vmi, options, str(self.pod / migration_socket_name("libvirt")))
            called = time.monotonic()
            received, report = await source.receiver.outcome(migration, timeout)
        progress = report.get("progress") or {}
        result = Result(self.name, mode, bool(report.get("completed")) and not report.get("failed"),
                        total=received - started, call=called - started,
                        downtime_ms=float(progress.get("downtimeMilliseconds") or 0),
                        processed=int(progress.get("dataProcessedBytes") or 0),
                        iterations=int(progress.get("iteration") or 0),
                        elapsed_ms=float(progress.get("elapsedMilliseconds") or 0),
                        transfer_rate=int(progress.get("memoryTransferRateBytesPerSecond") or 0),
                        reason=str(report.get("failureReason") or ""))
        result.tunnel_bytes = sum(int(c.get("sent", 0)) + int(c.get("received", 0))
                                  for c in (figures.get("source") or {}).values())
        if not result.ok:
            await target.close()  # the guest stays on the source
            return result
        await target.client.finalize_migration(vmi)
        exit_code = await asyncio.to_thread(source.process.wait_exit, STEP_SECONDS)
        if exit_code != 0:
            raise RuntimeError(f"the source launcher exited with {exit_code}:\n{source.process.output()}")
        last = (_counters(source.process.serial()) or [0])[-1]
        await source.close()
        # The guest goes on counting on the target, without a new boot.
        try:
            await asyncio.to_thread(target.process.wait_serial, f"{COUNTER} {last + 1}", 60)
        except AssertionError as error:
            domain = await target.client.get_domain()
            raise RuntimeError(f"{migration}: the guest does not go on on the target (its domain: "
                               f"{(domain or {}).get('status')}); {error}\ntarget launcher:\n"
                               f"{target.process.output()}") from None
        self.current = target
        return result

    async def close(self) -> None:
        for launcher in reversed(self.launchers):
            await launcher.close()


# -- cleanup of whatever outlived its owner ----------------------------------------------------

def _sweep(root: Path) -> list[int]:
    """Kill any process still running from under ``root`` (a QEMU or libvirtd whose launcher
    died before it could stop them). Only ever after the launchers were stopped."""
    needle = str(root).encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
        except (OSError, ProcessLookupError):
            pass
    return killed


def _terminated(signum: int, _frame: Any) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second one must not interrupt the cleanup
    raise KeyboardInterrupt(f"signal {signum}")


# -- the run ---------------------------------------------------------------------------------

def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _print_table(results: list[Result]) -> None:
    print()
    print(f"{'workload':<8} {'mode':<7} {'n':>2} {'total s':>13} {'job s':>6} {'downtime ms':>11} "
          f"{'processed':>9} {'iterations':>9} {'MiB/s':>6}")
    print(f"{'':<8} {'':<7} {'':>2} {'p50':>6} {'max':>6} {'p50':>6} {'p50':>5} {'max':>5} "
          f"{'MiB p50':>9} {'p50':>4} {'max':>4} {'p50':>6}")
    for workload in dict.fromkeys(r.workload for r in results):
        for mode in MODES:
            done = [r for r in results if r.workload == workload and r.mode == mode and r.ok]
            failed = [r for r in results if r.workload == workload and r.mode == mode and not r.ok]
            note = f"  ({len(failed)} failed: {failed[0].reason})" if failed else ""
            if not done:
                print(f"{workload:<8} {mode:<7} {0:>2}{note}")
                continue
            total = [r.total for r in done]
            down = [r.downtime_ms for r in done]
            iters = [r.iterations for r in done]
            print(f"{workload:<8} {mode:<7} {len(done):>2} {_p50(total):>6.2f} {max(total):>6.2f} "
                  f"{_p50([r.elapsed_ms / 1000 for r in done]):>6.2f} {_p50(down):>5.0f} {max(down):>5.0f} "
                  f"{_p50([r.processed / MIB for r in done]):>9.1f} {_p50(iters):>4.0f} {max(iters):>4} "
                  f"{_p50([r.throughput for r in done]):>6.0f}{note}")
    print()
    for workload in dict.fromkeys(r.workload for r in results):
        by_mode = {m: [r for r in results if r.workload == workload and r.mode == m and r.ok] for m in MODES}
        raw, tunnel = by_mode["raw"], by_mode["tunnel"]
        if not (raw and tunnel):
            continue
        ratios = []
        for name, value in (("total time", lambda r: r.total), ("downtime", lambda r: r.downtime_ms),
                            ("throughput", lambda r: r.throughput)):
            baseline = _p50([value(r) for r in raw])
            if baseline:
                ratios.append(f"{name} {_p50([value(r) for r in tunnel]) / baseline:.2f}x")
        moved = _p50([r.tunnel_bytes / MIB for r in tunnel])
        print(f"{workload:<8} tunnel / raw, p50: " + ", ".join(ratios) + f"  (tunnel carried {moved:.1f} MiB)")
    calls = [r.call for r in results if r.ok]
    print("total: Migrate call -> the source's completed report (it includes the source libvirt's teardown of "
          "its QEMU after the switchover);\njob: libvirt's job time; downtime: libvirt's; MiB/s: QEMU's transfer "
          "rate (all from the completed report)")
    if calls:
        print(f"the Migrate call itself (included in total): p50 {_p50(calls) * 1000:.0f} ms")


async def run(args: argparse.Namespace, root: Path) -> list[Result]:
    mutual_tls = not args.insecure
    save(new_ca("bench-migration-ca"), root, "ca")
    ca = load(root, "ca")
    credentials = channel_credentials(ca, f"virt-handler-{SOURCE_NODE}") if mutual_tls and ca else None
    options = cmd_pb2.MigrationOptions(completion_timeout_per_gib_seconds=args.completion_timeout,
                                       progress_timeout_seconds=args.completion_timeout)
    timeout = args.completion_timeout + 60.0
    workloads = [("idle", "#!/bin/sh\necho bench\n", 0.0)]
    if not args.no_dirty:
        workloads.append(("dirty", _dirty_script(args.dirty_mib, args.dirty_pause), args.dirty_settle))
    results: list[Result] = []
    async with target_handler(root, mutual_tls) as handler:
        def wiring(mode: str) -> Callable[[str, dict[str, Any], Path, Path], Any]:
            if mode == "raw":
                return lambda _migration, _vmi, source, target: raw_wiring(source, target)
            return lambda migration, vmi, source, target: tunnel_wiring(handler, credentials, migration, vmi,
                                                                        source, target)

        for name, user_data, settle in workloads:
            guest = Guest(root, name, _vmi(name, args.memory_mib, user_data))
            try:
                booted = await guest.boot()
                print(f"{name}: guest booted in {booted:.1f}s", flush=True)
                if name == "dirty":
                    rate = await guest.dirty_rate(settle, args.dirty_mib)
                    if not rate:
                        raise RuntimeError(f"the dirty workload does not run:\n{guest.current.process.serial()[-1500:]}")
                    print(f"dirty: the guest rewrites {args.dirty_mib} MiB at {rate:.0f} MiB/s "
                          f"(measured over {settle:.0f}s before migrating)", flush=True)
                for round_index in range(args.rounds):
                    # Alternating which mode goes first, so neither always follows the boot.
                    for mode in MODES if round_index % 2 == 0 else reversed(MODES):
                        result = await guest.migrate(mode, wiring(mode), options, timeout)
                        results.append(result)
                        print(f"{name} round {round_index + 1} {mode:<6} "
                              + (f"total {result.total:5.2f}s downtime {result.downtime_ms:4.0f} ms "
                                 f"job {result.elapsed_ms / 1000:5.2f}s processed {result.processed / MIB:6.1f} MiB "
                                 f"iterations {result.iterations} {result.throughput:5.0f} MiB/s"
                                 if result.ok else f"FAILED: {result.reason}"),
                              flush=True)
            finally:
                await guest.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="migrations per mode and workload (default 3)")
    parser.add_argument("--memory-mib", type=int, default=256, help="guest memory (default 256)")
    parser.add_argument("--dirty-mib", type=int, default=32,
                        help="guest RAM the dirty workload rewrites in a loop, at most a quarter of --memory-mib "
                             "(default 32)")
    parser.add_argument("--dirty-pause", type=float, default=0.0,
                        help="seconds the dirty workload sleeps between passes (default 0)")
    parser.add_argument("--dirty-settle", type=float, default=3.0,
                        help="seconds the dirty workload runs before the first migration (default 3)")
    parser.add_argument("--no-dirty", action="store_true", help="the idle guest only")
    parser.add_argument("--completion-timeout", type=int, default=60,
                        help="libvirt job limit in seconds for the guest's memory (rounded up to 1 GiB); "
                             "a migration that has not converged by then is aborted and reported failed")
    parser.add_argument("--insecure", action="store_true", help="plaintext gRPC instead of mutual TLS")
    parser.add_argument("--target-handler", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.target_handler:
        asyncio.run(serve_target(args.target_handler, not args.insecure))
        return
    if not (STORE / "index.json").exists() or GUEST not in (STORE / "index.json").read_text():
        raise SystemExit(f"{STORE} has no {GUEST}: run ./build.sh (it builds the tiny guest's images)")
    if not args.no_dirty and 4 * args.dirty_mib > args.memory_mib:
        # Two files of --dirty-mib in the guest's /tmp, a tmpfs of half its memory.
        raise SystemExit(f"--dirty-mib {args.dirty_mib}: at most a quarter of --memory-mib {args.memory_mib}")
    signal.signal(signal.SIGTERM, _terminated)
    print(f"{args.memory_mib} MiB TCG guest, {os.cpu_count()} CPUs, channels {', '.join(MIGRATION_CHANNELS)}; "
          f"tunnel: gRPC over loopback TCP with {'plaintext' if args.insecure else 'mutual TLS'}, target handler "
          f"in its own process; raw: one UnixRelay per channel; {args.rounds} rounds", flush=True)
    root = Path(tempfile.mkdtemp(prefix="kv-bench-mig-", dir="/tmp"))
    started = time.monotonic()
    results: list[Result] = []
    try:
        results = asyncio.run(run(args, root))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        for launcher in STARTED:
            with contextlib.suppress(Exception):
                launcher.stop()
        leftovers = _sweep(root)
        if leftovers:
            print(f"killed {len(leftovers)} leftover processes: {leftovers}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
    _print_table(results)
    print(f"run time {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
