"""virt-api: admission webhooks and the subresources.kubevirt.io API.

    python -m virt_api [--kubeconfig PATH] [--namespace kubevirt] [--listen POD_IP:8443]
"""

from __future__ import annotations

import argparse
import os
import sys

from kube_client.daemon import run_until_signalled
from virt_api.routes import ROUTE_SOURCES
from virt_api.server import VirtAPI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virt-api", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--namespace", default="kubevirt", help="where virt-api, its Service and the CA live")
    parser.add_argument("--listen", default=f"{os.environ.get('POD_IP', '127.0.0.1')}:8443",
                        help="host:port to serve HTTPS on")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen: expected host:port, got {args.listen!r}")
    return run_until_signalled(lambda api: VirtAPI(api, args.namespace, host, int(port), ROUTE_SOURCES),
                               args.kubeconfig, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
