"""`python -m local_cluster.workloads --kubeconfig PATH`: run the workload controllers
until SIGINT/SIGTERM (against any API server)."""

from __future__ import annotations

import argparse
import sys

from kube_client.daemon import run_until_signalled
from local_cluster.workloads.manager import WorkloadControllers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cluster.workloads",
                                     description="Run the ReplicaSet, Deployment and DaemonSet controllers.")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    parser.add_argument("--namespace", help="only manage workloads in this namespace")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    args = parser.parse_args(argv)
    return run_until_signalled(lambda api_client: WorkloadControllers(api_client, namespace=args.namespace),
                               args.kubeconfig, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
