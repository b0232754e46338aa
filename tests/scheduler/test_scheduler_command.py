"""`python -m local_cluster.scheduler --kubeconfig PATH` as its own process."""

from __future__ import annotations

import signal
import subprocess
import sys

from scheduler_testkit import Cluster


def test_module_entry_schedules_and_exits_on_sigterm(control_plane, cluster: Cluster) -> None:
    process = subprocess.Popen([sys.executable, "-m", "local_cluster.scheduler", "--kubeconfig",
                                str(control_plane.kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        node = cluster.node("only")
        cluster.pod("p")
        assert cluster.wait_bound("p", timeout=20) == node
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(f"the scheduler did not exit on SIGTERM: {output.decode()}") from None
    assert process.returncode == 0, output.decode()
