"""virt-controller: the VM, VMI, replica set, migration, evacuation and node controllers
behind one Lease, so that of several replicas exactly one acts while the others keep warm
caches.

    python -m virt_controller [--kubeconfig PATH] [--namespace kubevirt] [--launcher-image IMAGE]
        [--metrics-port 8443]

/metrics (HTTPS on POD_IP, certificate from the cluster CA) carries the VMI and migration
metrics of virt_controller.metrics, which only the leader reports, and every replica's
leading and ready status.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass

from kubernetes import client

from kube_client.controller import LeaderElector
from kube_client.daemon import run_until_signalled
from kubevirt_metrics import MetricsServer, add_metrics_port_argument, component_registry, serving_context
from kubevirt_metrics.runtime import rest_client_metrics, workqueue_metrics
from kubevirt_api.migration_config import CachedMigrationConfig
from pki.cluster_ca import ensure_ca
from virt_controller.informers import BY_OWNER, ClusterInformers
from virt_controller.launcher_pod import LAUNCHER_IMAGE
from virt_controller.metrics import register_component_status, register_migration_metrics, register_vmi_metrics
from virt_controller.migration_controller import MigrationController
from virt_controller.migration_evacuation import EvacuationController
from virt_controller.handler_heartbeats import HandlerHeartbeats
from virt_controller.node_controller import HEARTBEAT_TIMEOUT_SECONDS, NodeController
from virt_controller.replicaset_controller import ReplicaSetController
from virt_controller.vm_controller import VMController
from virt_controller.vmi_controller import VMIController

LEASE_NAME = "virt-controller"


@dataclass(frozen=True)
class Threads:
    """Workers per controller. Upstream's defaults: 10 for VMIs (most of a VMI's start is
    waiting on API calls, so its queue needs many), 3 for the others."""

    vmi: int = 10
    others: int = 3


class VirtController:
    """All controllers of this process, gated by one leader election."""

    def __init__(self, api, namespace: str, launcher_image: str, *,
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT_SECONDS, metrics_port: int | None = None,
                 metrics_host: str = "127.0.0.1", threads: Threads = Threads(), **lease_timing: float) -> None:
        # lease_timing: lease_duration, renew_deadline, retry_period (seconds), for tests.
        # metrics_port: where /metrics is served (HTTPS on metrics_host); None: not at all.
        self._api = api
        self._namespace = namespace
        self.leader = LeaderElector(api, namespace, LEASE_NAME, on_started_leading=self._follow_cluster,
                                    **lease_timing)
        self._following = False
        self._following_lock = threading.Lock()
        self.heartbeats = HandlerHeartbeats(api, namespace)
        migration_config = CachedMigrationConfig(api, namespace)
        # Started once this replica leads (_follow_cluster).
        self.informers = informers = ClusterInformers(api)
        self.migrations = MigrationController(api, launcher_image=launcher_image, config=migration_config,
                                              leader=self.leader, workers=threads.others, informers=informers)
        vmis = VMIController(api, launcher_image=launcher_image, leader=self.leader, workers=threads.vmi,
                             informers=informers)
        self.registry = component_registry()
        register_migration_metrics(self.registry, self.migrations.migrations, self.migrations.vmis,
                                   self.leader.is_leader)
        register_vmi_metrics(self.registry, vmis.vmis, lambda uid: vmis.pods.by_index(BY_OWNER, uid),
                             self.leader.is_leader)
        register_component_status(self.registry, self.leader.is_leader, self.ready)
        self._metrics_port = metrics_port
        self._metrics_host = metrics_host
        self.metrics: MetricsServer | None = None
        self.parts = [vmis, self.migrations,
                      EvacuationController(api, config=migration_config, leader=self.leader, informers=informers),
                      VMController(api, leader=self.leader, workers=threads.others, informers=informers),
                      ReplicaSetController(api, leader=self.leader, workers=threads.others, informers=informers),
                      NodeController(api, heartbeat_timeout=heartbeat_timeout, leader=self.leader,
                                     stream_beats=self.heartbeats.last_beat, informers=informers)]
        # Every replica's own queues and API requests, leading or not (as upstream's).
        self.rest_metrics = rest_client_metrics()
        self.registry.register(self.rest_metrics)
        self.registry.register(workqueue_metrics(part.controller for part in self.parts))

    def ready(self) -> bool:
        """Ready to take the lead, as upstream reports it: a replica that runs its election
        is; the leader once every controller's caches have synced."""
        return not self.leader.is_leader() or all(part.controller.has_synced() for part in self.parts)

    def _follow_cluster(self) -> None:
        """As upstream, a replica lists and watches the cluster only once it leads: a standby
        costs the API server nothing. It keeps following should it step down, warm if it
        leads again (an informer cannot start twice)."""
        with self._following_lock:
            if not self._following:
                self._following = True
                self.informers.start()

    def _serve_metrics(self, port: int) -> MetricsServer:
        ca = ensure_ca(client.CoreV1Api(self._api))
        names = tuple(f"virt-controller.{self._namespace}{suffix}" for suffix in ("", ".svc"))
        server = MetricsServer(self.registry, self._metrics_host, port,
                               serving_context(ca, "virt-controller", dns_names=names,
                                               addresses=(self._metrics_host,)))
        server.start()
        return server

    def start(self) -> None:
        self.rest_metrics.instrument(self._api)
        if self._metrics_port is not None:
            # First, so that failing to read the cluster CA leaves nothing half started.
            self.metrics = self._serve_metrics(self._metrics_port)
        self.heartbeats.start()
        self.leader.start()
        for part in self.parts:
            part.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.metrics is not None:
            self.metrics.stop(timeout)
        for part in self.parts:
            part.stop(timeout)
        self.leader.stop()
        with self._following_lock:
            if self._following:
                self.informers.stop(timeout)
        self.heartbeats.stop(timeout)
        self.rest_metrics.release(self._api)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virt-controller", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--namespace", default="kubevirt", help="where the leader-election Lease lives")
    parser.add_argument("--launcher-image", default=LAUNCHER_IMAGE)
    parser.add_argument("--heartbeat-timeout", type=float, default=HEARTBEAT_TIMEOUT_SECONDS, metavar="SECONDS",
                        help="a node whose virt-handler has not beaten for this long loses its VMIs")
    parser.add_argument("--vmi-controller-threads", type=int, default=Threads.vmi, metavar="N",
                        help=f"workers of the VMI controller (default {Threads.vmi})")
    parser.add_argument("--controller-threads", type=int, default=Threads.others, metavar="N",
                        help=f"workers of each other controller (default {Threads.others})")
    add_metrics_port_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.heartbeat_timeout <= 0:
        parser.error("--heartbeat-timeout: must be a positive number of seconds")
    for flag, value in (("--vmi-controller-threads", args.vmi_controller_threads),
                        ("--controller-threads", args.controller_threads)):
        if not 1 <= value <= 100:
            parser.error(f"{flag}: must be between 1 and 100, got {value}")
    threads = Threads(vmi=args.vmi_controller_threads, others=args.controller_threads)
    # The pod's own address, as virt-api and virt-handler bind theirs: pods of a local
    # cluster share one host, each with its own loopback address.
    metrics_host = os.environ.get("POD_IP", "127.0.0.1")
    return run_until_signalled(lambda api: VirtController(api, args.namespace, args.launcher_image,
                                                          heartbeat_timeout=args.heartbeat_timeout,
                                                          metrics_port=args.metrics_port or None,
                                                          metrics_host=metrics_host, threads=threads),
                               args.kubeconfig, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
