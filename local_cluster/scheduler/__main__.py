"""`python -m local_cluster.scheduler --kubeconfig PATH`: run the scheduler until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from kube_client.daemon import run_until_signalled
from local_cluster.scheduler.scheduler import DEFAULT_SCHEDULER, Scheduler


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_cluster.scheduler",
                                     description="Bind pending pods to nodes.")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER,
                        help="schedule the pods whose spec.schedulerName is this")
    parser.add_argument("--retry-interval", type=float, default=30.0,
                        help="seconds after which an unschedulable pod is tried again regardless")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every binding")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    return run_until_signalled(lambda api_client: Scheduler(api_client, scheduler_name=args.scheduler_name, retry_interval=args.retry_interval), args.kubeconfig, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
