"""Fixtures for the process kubelet's pod runtime: a node state directory, runtimes
over it (several, to play a kubelet restart), and a teardown that proves every
process a test started is gone."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cluster.kubelet.proc import signal_group, signal_process

from .helpers import Node
from tests.tempdirs import scratch_dir


@pytest.fixture
def node() -> Iterator[Node]:
    # Short paths under /tmp (log and socket paths stay readable in failures).
    root = Path(tempfile.mkdtemp(prefix="kvk-", dir="/tmp"))
    store = root / "images"
    node = Node(root / "node", store)
    try:
        yield node
    finally:
        for runtime in node.runtimes:
            runtime.stop_all(grace_seconds=0, timeout=10)
            runtime.close()
        identities = node.identities()
        # Killed processes take a moment to be gone from /proc; give them one.
        deadline = time.monotonic() + 3
        while any(i.alive() for i in identities) and time.monotonic() < deadline:
            time.sleep(0.02)
        leftovers = [i for i in identities if i.alive()]
        for identity in leftovers:
            signal_group(identity.pid, signal.SIGKILL)
            signal_process(identity.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
        assert not leftovers, f"processes outlived the test: {leftovers}"


@pytest.fixture
def hostdir() -> Iterator[Path]:
    # Outside /tmp on purpose: inside a pod, /tmp is the pod's own.
    with scratch_dir("kvk-", "/var/tmp") as path:
        yield path
