"""`python -m local_cluster.provisioner --kubeconfig PATH --root DIR`: run until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from kube_client.daemon import run_until_signalled
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
    return run_until_signalled(lambda api_client: Provisioner(api_client, args.root), args.kubeconfig, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
