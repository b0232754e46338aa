"""`python -m local_cluster.scheduler --kubeconfig PATH`: run the scheduler until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from kube_client.config import KubeconfigError, load_api_client
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
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        api_client = load_api_client(args.kubeconfig)
    except KubeconfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    scheduler = Scheduler(api_client, scheduler_name=args.scheduler_name, retry_interval=args.retry_interval)
    scheduler.start()
    try:
        done.wait()
    finally:
        scheduler.stop()
        api_client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
