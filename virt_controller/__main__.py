"""virt-controller: the VM, VMI, replica set, migration, evacuation and node controllers
behind one Lease, so that of several replicas exactly one acts while the others keep warm
caches.

    python -m virt_controller [--kubeconfig PATH] [--namespace kubevirt] [--launcher-image IMAGE]
"""

from __future__ import annotations

import argparse
import sys

from kube_client.controller import LeaderElector
from kube_client.daemon import run_until_signalled
from kubevirt_api.migration_config import CachedMigrationConfig
from virt_controller.launcher_pod import LAUNCHER_IMAGE
from virt_controller.migration_controller import MigrationController
from virt_controller.migration_evacuation import EvacuationController
from virt_controller.handler_heartbeats import HandlerHeartbeats
from virt_controller.node_controller import HEARTBEAT_TIMEOUT_SECONDS, NodeController
from virt_controller.replicaset_controller import ReplicaSetController
from virt_controller.vm_controller import VMController
from virt_controller.vmi_controller import VMIController

LEASE_NAME = "virt-controller"


class VirtController:
    """All controllers of this process, gated by one leader election."""

    def __init__(self, api, namespace: str, launcher_image: str, *,
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT_SECONDS, **lease_timing: float) -> None:
        # lease_timing: lease_duration, renew_deadline, retry_period (seconds), for tests.
        self.leader = LeaderElector(api, namespace, LEASE_NAME, **lease_timing)
        self.heartbeats = HandlerHeartbeats(api, namespace)
        migration_config = CachedMigrationConfig(api, namespace)
        self.parts = [VMIController(api, launcher_image=launcher_image, leader=self.leader),
                      MigrationController(api, launcher_image=launcher_image, config=migration_config,
                                          leader=self.leader),
                      EvacuationController(api, config=migration_config, leader=self.leader),
                      VMController(api, leader=self.leader), ReplicaSetController(api, leader=self.leader),
                      NodeController(api, heartbeat_timeout=heartbeat_timeout, leader=self.leader,
                                     stream_beats=self.heartbeats.last_beat)]

    def start(self) -> None:
        self.heartbeats.start()
        self.leader.start()
        for part in self.parts:
            part.start()

    def stop(self, timeout: float = 10.0) -> None:
        for part in self.parts:
            part.stop(timeout)
        self.leader.stop()
        self.heartbeats.stop(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virt-controller", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--namespace", default="kubevirt", help="where the leader-election Lease lives")
    parser.add_argument("--launcher-image", default=LAUNCHER_IMAGE)
    parser.add_argument("--heartbeat-timeout", type=float, default=HEARTBEAT_TIMEOUT_SECONDS, metavar="SECONDS",
                        help="a node whose virt-handler has not beaten for this long loses its VMIs")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.heartbeat_timeout <= 0:
        parser.error("--heartbeat-timeout: must be a positive number of seconds")
    return run_until_signalled(lambda api: VirtController(api, args.namespace, args.launcher_image,
                                                          heartbeat_timeout=args.heartbeat_timeout),
                               args.kubeconfig, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
