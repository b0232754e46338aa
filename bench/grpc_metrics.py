"""What the gRPC server metrics interceptor costs NodeService calls. Prints figures only.

An echo servicer over loopback TCP (no TLS), three ways: no interceptor, the interceptor
counting messages, the interceptor with the method in uncounted_messages (as virt-handler
runs MigrationTunnel). Figures: unary calls (Pause) per second, and a bidirectional
stream through the servicer context's read/write (as Console and MigrationTunnel) with
--frame-kib frames, in frames per second. Best of --repeat runs.

    .venv/bin/python -m bench.grpc_metrics [--calls 2000] [--frames 5000] [--frame-kib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from grpc_support.server import service, start_server
from grpc_support.server_metrics import GrpcServerMetrics, method_path
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc


class Echo(pb_grpc.NodeServiceServicer):
    async def Pause(self, request: pb.VMIRef, context: grpc.aio.ServicerContext) -> pb.LifecycleResponse:
        return pb.LifecycleResponse()

    async def MigrationTunnel(self, request_iterator: AsyncIterator[pb.TunnelFrame],
                              context: grpc.aio.ServicerContext) -> None:
        while (frame := await context.read()) is not grpc.aio.EOF:
            await context.write(frame)


async def _run(interceptors: list[GrpcServerMetrics], calls: int, frames: int, frame: bytes) -> tuple[float, float]:
    server, port = await start_server([service(pb, "NodeService", pb_grpc.add_NodeServiceServicer_to_server, Echo())],
                                      tcp_address="127.0.0.1:0", interceptors=interceptors)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.NodeServiceStub(channel)
            await stub.Pause(pb.VMIRef())
            started = time.perf_counter()
            for _ in range(calls):
                await stub.Pause(pb.VMIRef(name="x"))
            unary = calls / (time.perf_counter() - started)
            call = stub.MigrationTunnel()
            message = pb.TunnelFrame(data=frame)
            started = time.perf_counter()

            async def send() -> None:
                for _ in range(frames):
                    await call.write(message)
                await call.done_writing()

            sending = asyncio.create_task(send())
            while await call.read() is not grpc.aio.EOF:
                pass
            await sending
            return unary, frames / (time.perf_counter() - started)
    finally:
        await server.stop(None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.grpc_metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--frame-kib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    frame = bytes(args.frame_kib * 1024)
    tunnel = method_path(pb, "NodeService", "MigrationTunnel")
    variants = {"no interceptor": lambda: [],
                "counting messages": lambda: [GrpcServerMetrics()],
                "MigrationTunnel uncounted": lambda: [GrpcServerMetrics(uncounted_messages=[tunnel])]}
    results = {name: [0.0, 0.0] for name in variants}
    for _ in range(args.repeat):
        for name, interceptors in variants.items():  # interleaved, so drift hits all alike
            unary, stream = asyncio.run(_run(interceptors(), args.calls, args.frames, frame))
            results[name] = [max(results[name][0], unary), max(results[name][1], stream)]
    for name, (unary, stream) in results.items():
        print(f"{name:26s} unary {unary:8.0f} calls/s   stream {stream:8.0f} frames/s "
              f"({stream * len(frame) / 2**20:7.0f} MiB/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
