"""`python -m local_cluster.provisioner --kubeconfig PATH --root DIR`: run until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from kube_client.config import KubeconfigError, load_api_client
from local_cluster.provisioner.provisioner import Provisioner


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_cluster.provisioner",
                                     description="Provision local-path volumes for claims of the \"local\" class.")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    parser.add_argument("--root", required=True, help="directory that holds the volumes' data")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every volume made and removed")
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
    provisioner = Provisioner(api_client, args.root)
    provisioner.start()
    try:
        done.wait()
    finally:
        provisioner.stop()
        api_client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
