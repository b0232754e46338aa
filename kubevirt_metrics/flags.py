"""The ``--metrics-port`` flag every component shares, so they all read it the same way."""

from __future__ import annotations

import argparse

# Upstream's components serve /metrics on 8443 (container port "metrics").
DEFAULT_METRICS_PORT = 8443
METRICS_PORT_NAME = "metrics"


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0..65535")
    return port


def add_metrics_port_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=_port, default=DEFAULT_METRICS_PORT, metavar="PORT",
                        help=f"serve Prometheus metrics on https://<pod IP>:PORT/metrics "
                             f"(default {DEFAULT_METRICS_PORT}; 0 disables)")
