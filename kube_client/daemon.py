"""Thin entry points for the control-plane daemons: load credentials, start, wait for
SIGINT/SIGTERM, stop."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Protocol

from kubernetes import client

from kube_client.config import KubeconfigError, load_api_client


class Daemon(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


def run_until_signalled(build: Callable[[client.ApiClient], Daemon], kubeconfig: str | None,
                        verbose: bool) -> int:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        api_client = load_api_client(kubeconfig)
    except KubeconfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    daemon = build(api_client)
    daemon.start()
    try:
        done.wait()
    finally:
        daemon.stop()
        api_client.close()
    return 0
