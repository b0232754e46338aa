"""MigrationTunnel throughput against a raw unix-socket relay, measured in one run. Prints
figures only.

    .venv/bin/python -m bench.tunnel [--mib 256] [--chunk-kib 256] [--insecure] [--runs 3]

raw:       writer -> unix socket -> asyncio relay (sock_recv/sock_sendall, same chunk size
           as the tunnel) -> unix socket -> sink
raw x2:    the same with a second relay in a second process, as the tunnel has one relay in
           each handler
grpc only: the tunnel's gRPC leg alone: data frames of one chunk from memory, same channel,
           server and credentials, to a handler in the second process that drops them; the
           tunnel's ceiling
tunnel:    writer -> unix socket -> SourceTunnel -> gRPC over loopback TCP (mutual TLS as
           between two handlers, unless --insecure) -> a second process serving
           NodeService.MigrationTunnel (the real servicer, gRPC server options as in
           production) -> unix socket -> sink
The writer and the sink are threads of this process with blocking sockets; the sink checks
a CRC of every byte and notes when the last one arrived. The target handler is its own
process, as on another node. Besides MB/s (best run), each path shows the median CPU seconds
per GiB of both processes: on a small or busy machine throughput follows CPU cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc

from bench.peer_process import peer_process
from grpc_support.server import Service, service, start_server
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from pki import load, new_ca, save
from pki.cluster_ca import channel_credentials, server_credentials
from virt_handler import migration_tunnel
from virt_handler.migration_tunnel import SourceTunnel, tunnel_channel
from virt_handler.node_service import NodeServiceServicer

MIB = 1024 * 1024
BLOCK = 4 * MIB
MIGRATION = "bench"
DISCARD_SERVICE = "bench.Discard"


class Sink(threading.Thread):
    """Accepts one connection on ``path`` and reads it to EOF, counting bytes and a CRC."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.received = 0
        self.crc = 0
        self.finished_at = 0.0

    def run(self) -> None:
        conn, _ = self.listener.accept()
        self.listener.close()
        self.path.unlink()
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        with conn:
            while n := conn.recv_into(buffer):
                self.crc = zlib.crc32(view[:n], self.crc)
                self.received += n
        self.finished_at = time.perf_counter()


def _write(path: Path, block: bytes, total: int) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sent = 0
        while sent < total:
            piece = memoryview(block)[:min(len(block), total - sent)]
            sock.sendall(piece)
            sent += len(piece)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # until the far end closes: the whole path was torn down
            pass


async def _push(entry: Path, sink_path: Path, block: bytes, total: int, expected_crc: int) -> float:
    """Seconds from the first byte written to the last byte read (and checked)."""
    sink = Sink(sink_path)
    sink.start()
    start = time.perf_counter()
    writer = asyncio.create_task(asyncio.to_thread(_write, entry, block, total))
    await asyncio.wait_for(asyncio.to_thread(sink.join), 120)  # a thread waits: no polling on the relay's loop
    elapsed = sink.finished_at - start
    await asyncio.wait_for(writer, 30)
    if sink.received != total or sink.crc != expected_crc:
        raise SystemExit(f"corrupted: {sink.received} bytes of {total}, crc {sink.crc:#x} != {expected_crc:#x}")
    return elapsed


# -- raw relay ---------------------------------------------------------------------------------

async def _pipe(src: socket.socket, dst: socket.socket, chunk: int) -> None:
    loop = asyncio.get_running_loop()
    while data := await loop.sock_recv(src, chunk):
        await loop.sock_sendall(dst, data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


async def _relay_connection(conn: socket.socket, forward: Path, chunk: int) -> None:
    loop = asyncio.get_running_loop()
    conn.setblocking(False)
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.setblocking(False)
    try:
        await loop.sock_connect(upstream, str(forward))
        await asyncio.gather(_pipe(conn, upstream, chunk), _pipe(upstream, conn, chunk))
    finally:
        conn.close()
        upstream.close()


@contextlib.asynccontextmanager
async def raw_relay(listen: Path, forward: Path, chunk: int) -> AsyncIterator[None]:
    """Relays every connection made to ``listen`` to ``forward``, both ways."""
    loop = asyncio.get_running_loop()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(listen))
    listener.listen(4)
    listener.setblocking(False)
    tasks: set[asyncio.Task[None]] = set()

    async def accept() -> None:
        while True:
            conn, _ = await loop.sock_accept(listener)
            task = asyncio.create_task(_relay_connection(conn, forward, chunk))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    accepting = asyncio.create_task(accept())
    try:
        yield
    finally:
        for task in (accepting, *tasks):
            task.cancel()
        await asyncio.gather(accepting, *tasks, return_exceptions=True)
        listener.close()
        listen.unlink()


# -- the peer process: the target handler (and the second raw relay) --------------------------

async def _discard(_requests: object, context: grpc.aio.ServicerContext) -> None:
    """The far end of the gRPC-only measure: reads every frame, answers with the byte count."""
    received = 0
    while (frame := await context.read()) is not grpc.aio.EOF:
        received += len(frame)
    await context.write(str(received).encode())


def _add_discard(_servicer: object, server: grpc.aio.Server) -> None:
    handler = grpc.stream_stream_rpc_method_handler(_discard)  # raw bytes both ways
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(DISCARD_SERVICE, {"Frames": handler}),))


async def serve_peer(work: Path, mutual_tls: bool, chunk: int) -> None:
    servicer = NodeServiceServicer("target-node", "qemu", work, lambda: 0)
    servicer.tunnels.chunk = chunk
    servicer.migration_targets.register(MIGRATION, pb.QEMU, work / "tunnel-sink.sock")
    services = [service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server, servicer),
                Service(DISCARD_SERVICE, _add_discard, None)]
    ca = load(work, "ca")
    credentials = server_credentials(ca, "target-node") if mutual_tls and ca else None
    server, port = await start_server(services, tcp_address="127.0.0.1:0", credentials=credentials)
    async with raw_relay(work / "peer-raw.sock", work / "raw-sink.sock", chunk):
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes it
    await server.stop(None)


@contextlib.asynccontextmanager
async def peer(work: Path, mutual_tls: bool, chunk: int) -> AsyncIterator[tuple[int, int]]:
    """The peer process: yields (its gRPC port, its pid)."""
    argv = [sys.executable, "-m", "bench.tunnel", "--peer", str(work), "--chunk-kib", str(chunk // 1024)]
    if not mutual_tls:
        argv.append("--insecure")
    async with peer_process(argv) as (process, port):
        yield port, process.pid


# -- the measures ------------------------------------------------------------------------------

async def run_raw(work: Path, chunk: int, block: bytes, total: int, crc: int) -> float:
    async with raw_relay(work / "raw.sock", work / "raw-sink.sock", chunk):
        return await _push(work / "raw.sock", work / "raw-sink.sock", block, total, crc)


async def run_raw2(work: Path, chunk: int, block: bytes, total: int, crc: int) -> float:
    async with raw_relay(work / "raw2.sock", work / "peer-raw.sock", chunk):
        return await _push(work / "raw2.sock", work / "raw-sink.sock", block, total, crc)


async def run_tunnel(work: Path, port: int, mutual_tls: bool, chunk: int, block: bytes, total: int,
                     crc: int) -> float:
    ca = load(work, "ca")
    credentials = channel_credentials(ca, "source-node") if mutual_tls and ca else None
    channel = tunnel_channel(f"127.0.0.1:{port}", credentials, "target-node")
    tunnel = SourceTunnel(channel, MIGRATION, pb.QEMU, work / "tunnel-source.sock", chunk=chunk)
    try:
        await tunnel.start()
        elapsed = await _push(tunnel.path, work / "tunnel-sink.sock", block, total, crc)
        await asyncio.wait_for(tunnel.wait_idle(), 30)
        if tunnel.counters.sent != total or tunnel.counters.failures:
            raise SystemExit(f"tunnel counters: {tunnel.counters}")
        return elapsed
    finally:
        await tunnel.close()
        await channel.close()


async def run_grpc_only(port: int, mutual_tls: bool, chunk: int, total: int, work: Path) -> float:
    """The tunnel's gRPC leg alone: ``total`` bytes in data frames of ``chunk`` bytes, on a
    channel and a server as the tunnel's, to a handler that reads and drops them. No socket at
    either end and no frame built per write: the tunnel cannot be faster than this."""
    ca = load(work, "ca")
    credentials = channel_credentials(ca, "source-node") if mutual_tls and ca else None
    channel = tunnel_channel(f"127.0.0.1:{port}", credentials, "target-node")
    payload = os.urandom(chunk)
    frames = [migration_tunnel._data_frame(payload)] * (total // chunk)
    if total % chunk:
        frames.append(migration_tunnel._data_frame(payload[:total % chunk]))
    try:
        call = channel.stream_stream(f"/{DISCARD_SERVICE}/Frames")()
        start = time.perf_counter()
        for frame in frames:
            await call.write(frame)
        await call.done_writing()
        received = int(await call.read())
        elapsed = time.perf_counter() - start
        if received != sum(map(len, frames)):
            raise SystemExit(f"grpc only: {received} bytes received of {sum(map(len, frames))}")
        return elapsed
    finally:
        await channel.close()


def _rate(total: int, seconds: float) -> float:
    return total / MIB / seconds


def _cpu_seconds(peer_pid: int) -> float:
    """CPU time so far of this process (writer, sink, source handler or first relay) and the peer."""
    fields = Path(f"/proc/{peer_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(run: Callable[[], Awaitable[float]], peer_pid: int) -> tuple[float, float]:
    """(seconds, CPU seconds of both processes) of one run."""
    cpu = _cpu_seconds(peer_pid)
    seconds = await run()
    return seconds, _cpu_seconds(peer_pid) - cpu


async def measure(mib: int, chunk: int, mutual_tls: bool, runs: int, only: str | None = None
                  ) -> dict[str, list[tuple[float, float]]]:
    """Per path, per run: (seconds to move ``mib`` MiB, CPU seconds of both processes)."""
    total = mib * MIB
    block = os.urandom(BLOCK)
    crc = 0
    for at in range(0, total, BLOCK):
        crc = zlib.crc32(memoryview(block)[:min(BLOCK, total - at)], crc)
    figures: dict[str, list[tuple[float, float]]] = {"raw": [], "raw x2": [], "grpc only": [], "tunnel": []}
    with tempfile.TemporaryDirectory(prefix="kv-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        save(new_ca("bench-tunnel-ca"), work, "ca")
        async with peer(work, mutual_tls, chunk) as (port, peer_pid):
            measures: dict[str, Callable[[], Awaitable[float]]] = {
                "raw": lambda: run_raw(work, chunk, block, total, crc),
                "raw x2": lambda: run_raw2(work, chunk, block, total, crc),
                "grpc only": lambda: run_grpc_only(port, mutual_tls, chunk, total, work),
                "tunnel": lambda: run_tunnel(work, port, mutual_tls, chunk, block, total, crc),
            }
            for _ in range(runs):
                for name, run in measures.items():
                    if only in (None, name):
                        figures[name].append(await _measure(run, peer_pid))
    return {name: values for name, values in figures.items() if values}


async def main_async(args: argparse.Namespace) -> None:
    total = args.mib * MIB
    chunk = args.chunk_kib * 1024
    mutual_tls = not args.insecure
    print(f"{args.mib} MiB one way, {args.chunk_kib} KiB frames, gRPC over loopback TCP with "
          f"{'mutual TLS' if mutual_tls else 'plaintext'}, {os.cpu_count()} CPUs, best of {args.runs}")
    runs = await measure(args.mib, chunk, mutual_tls, args.runs, args.only)
    best = {name: _rate(total, min(seconds for seconds, _ in figures)) for name, figures in runs.items()}
    gib = total / (1024 * MIB)
    for name, figures in runs.items():
        rates = ", ".join(f"{_rate(total, seconds):.0f}" for seconds, _ in figures)
        cpu = statistics.median(cpu for _, cpu in figures) / gib
        print(f"  {name:9} {best[name]:6.0f} MB/s  (runs: {rates})  CPU {cpu:.2f} s/GiB")
    for baseline, note in (("raw", "  (issue target >= 0.9x)"), ("raw x2", ""), ("grpc only", "")):
        if "tunnel" in best and baseline in best:
            print(f"  tunnel / {baseline:9} {best['tunnel'] / best[baseline]:.2f}x{note}")
    print("  (MB = MiB; CPU: median CPU seconds per GiB moved, both processes, writer and sink included"
          " where the path has them)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.tunnel", description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--chunk-kib", type=int, default=migration_tunnel.CHUNK // 1024)
    parser.add_argument("--insecure", action="store_true", help="plaintext gRPC instead of mutual TLS")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["raw", "raw x2", "grpc only", "tunnel"],
                        help="measure one path (for profiling)")
    parser.add_argument("--peer", type=Path, help=argparse.SUPPRESS)  # internal: run as the target handler
    args = parser.parse_args()
    if args.peer is not None:
        asyncio.run(serve_peer(args.peer, not args.insecure, args.chunk_kib * 1024))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
