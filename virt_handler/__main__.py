"""virt-handler: the node daemon.

    python -m virt_handler --node-name NODE [--kubeconfig PATH] [--sockets-dir /var/run/kubevirt/sockets]
        [--listen 127.0.0.1:8186] [--metrics-port 8443]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from pathlib import Path

from kubernetes import client

from grpc_support.server import service, start_server
from grpc_support.server_metrics import GrpcServerMetrics, method_path
from grpc_support.versions import info_service
from kube_client.daemon import run_until_signalled
from kubevirt_metrics import MetricsServer, add_metrics_port_argument, component_registry, serving_context
from kubevirt_metrics.runtime import rest_client_metrics, workqueue_metrics
from kubevirt_api.pod_layout import SOCKETS_DIR
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2, nodeservice_pb2_grpc
from pki.cluster_ca import channel_credentials, ensure_ca, server_credentials
from virt_handler.component_status import register_component_status
from virt_handler.domain_metrics import DomainStatsCollector
from virt_handler.heartbeat import HEARTBEAT_SECONDS, NodeHeartbeat
from virt_handler.launcher_stats import LauncherStatsScraper
from virt_handler.migration_metrics import MigrationStatsCollector
from virt_handler.migrations import SourceSide, TargetSide
from virt_handler.node_service import SUPPORTED_NODESERVICE_VERSIONS, NodeServiceServicer
from virt_handler.vmi_sync import VMISync
from virt_launcher.emulation import domain_type

DEFAULT_SOCKETS = Path(SOCKETS_DIR)


class VirtHandler:
    def __init__(self, api: client.ApiClient, node_name: str, sockets_dir: Path, listen: str,
                 heartbeat_interval: float = HEARTBEAT_SECONDS, metrics_port: int | None = None) -> None:
        """metrics_port: where /metrics is served (HTTPS, on the host of ``listen``); None: not at all."""
        self._api = api
        self.node_name = node_name
        self.emulation = domain_type()
        self.sync = VMISync(api, node_name, sockets_dir)
        self.heartbeat = NodeHeartbeat(api, node_name, self.emulation, heartbeat_interval)
        self._listen = listen
        self._sockets_dir = sockets_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="node-service", daemon=True)
        self._server = None
        self.port = 0
        self._metrics_port = metrics_port
        self.metrics: MetricsServer | None = None
        # Messages of MigrationTunnel go uncounted: counting would cost each frame of a
        # migration a call (grpc_support.server_metrics); its calls are still counted.
        self.grpc_metrics = GrpcServerMetrics(
            uncounted_messages=[method_path(nodeservice_pb2, "NodeService", "MigrationTunnel")])
        self.workqueues = workqueue_metrics([self.sync.controller, self.sync.target_controller])
        self.rest_metrics = rest_client_metrics()
        self._launcher_stats: LauncherStatsScraper | None = None

    def _running_vmis(self) -> int:
        return len(self.sync.vmis.list())

    async def _serve(self) -> None:
        ca = ensure_ca(client.CoreV1Api(self._api))
        host = self._listen.rpartition(":")[0]
        servicer = NodeServiceServicer(self.node_name, self.emulation, self._sockets_dir, self._running_vmis)
        self._servicer = servicer
        self._ca = ca
        self._server, self.port = await start_server([
            service(nodeservice_pb2, "NodeService", nodeservice_pb2_grpc.add_NodeServiceServicer_to_server,
                    servicer),
            info_service("NodeServiceInfo", SUPPORTED_NODESERVICE_VERSIONS, "kubevirt-py-handler/0.1.0"),
        ], tcp_address=self._listen, credentials=server_credentials(ca, self.node_name, addresses=(host,)),
            interceptors=[self.grpc_metrics])

    def _migration_sides(self) -> None:
        """Both halves of live migration, once NodeService (the tunnel's target end) serves."""
        host = self._listen.rpartition(":")[0]
        credentials = channel_credentials(self._ca, f"virt-handler-{self.node_name}")
        self.sync.migration_target = TargetSide(self.node_name, self._sockets_dir, self._servicer.migration_targets,
                                                f"{host}:{self.port}", self.sync.run, self.sync.patch_migration_state)
        self.sync.migration_source = SourceSide(self.node_name, self._sockets_dir, lambda: credentials,
                                                self.sync.run, self.sync.patch_migration_state)

    def ready(self) -> bool:
        """NodeService serves and the VMI caches have synced."""
        return (self._server is not None and self.sync.controller.has_synced()
                and self.sync.target_controller.has_synced())

    def _serve_metrics(self, port: int) -> MetricsServer:
        host = self._listen.rpartition(":")[0].strip("[]")  # next to NodeService, on the pod's address
        registry = component_registry()
        for runtime in (self.grpc_metrics, self.workqueues, self.rest_metrics, self.sync.event_latency):
            registry.register(runtime)
        registry.register(MigrationStatsCollector(self.node_name, self.sync.migration_reports, self.sync.vmis.get))
        self._launcher_stats = LauncherStatsScraper(self._sockets_dir)
        registry.register(DomainStatsCollector(self.node_name, self.sync.vmis.list, self._launcher_stats))
        register_component_status(registry, self.ready)
        server = MetricsServer(registry, host, port, serving_context(self._ca, "virt-handler",
                                                                       dns_names=(f"virt-handler-{self.node_name}",),
                                                                       addresses=(host,)))
        server.start()
        return server

    def start(self) -> None:
        self.rest_metrics.instrument(self._api)
        self._sockets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(60)
        self._migration_sides()
        self.sync.start()
        self.heartbeat.start()
        if self._metrics_port is not None:
            self.metrics = self._serve_metrics(self._metrics_port)

    def stop(self, timeout: float = 10.0) -> None:
        if self.metrics is not None:
            self.metrics.stop(timeout)
        if self._launcher_stats is not None:
            self._launcher_stats.close()
        self.heartbeat.stop()
        self.sync.stop()
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(1), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self.rest_metrics.release(self._api)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virt-handler", description="The kubevirt-py node daemon.")
    parser.add_argument("--node-name", default=os.environ.get("NODE_NAME"))
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--sockets-dir", type=Path, default=DEFAULT_SOCKETS)
    parser.add_argument("--listen", default=f"{os.environ.get('POD_IP', '127.0.0.1')}:8186",
                        help="host:port of NodeService (mutual TLS)")
    parser.add_argument("--heartbeat-interval", type=float, default=HEARTBEAT_SECONDS, metavar="SECONDS",
                        help="how often the node's heartbeat annotation is refreshed")
    add_metrics_port_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.node_name:
        parser.error("--node-name (or NODE_NAME) is required")
    if args.heartbeat_interval <= 0:
        parser.error("--heartbeat-interval: must be a positive number of seconds")
    return run_until_signalled(lambda api: VirtHandler(api, args.node_name, args.sockets_dir, args.listen,
                                                       args.heartbeat_interval, args.metrics_port or None),
                               args.kubeconfig, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
