"""pods/log through the real API server and a real process kubelet: the official
client's read_namespaced_pod_log and `kubectl logs`, as against Kubernetes."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.local_cluster.kubelet_process import Kubelet, node_ready
from tests.wait import eventually

NODE, INDEX = "node07", 7
IMAGE = "kubevirt-py/virtctl:latest"  # host-root processes: /bin/sh is there
KUBECTL = shutil.which("kubectl")
STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z"


@pytest.fixture(scope="module")
def core(control_plane) -> Iterator[client.CoreV1Api]:
    root = control_plane.state_dir / NODE
    root.mkdir(parents=True, exist_ok=True)
    kubelet = Kubelet(control_plane.kubeconfig, root, NODE, INDEX)
    try:
        api = client.CoreV1Api(control_plane.api_client())
        eventually(lambda: node_ready(api, NODE), timeout=30, what="node Ready")
        yield api
    finally:
        kubelet.close()


def _container(name: str, script: str) -> dict:
    return {"name": name, "image": IMAGE, "command": ["/bin/sh", "-c", script]}


def _pod(core: client.CoreV1Api, name: str, *containers: dict, restart: str = "Never",
         node: str | None = NODE) -> None:
    spec: dict = {"restartPolicy": restart, "terminationGracePeriodSeconds": 1, "containers": list(containers)}
    if node:
        spec["nodeName"] = node
    core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": spec})


def _phase(core: client.CoreV1Api, name: str) -> str:
    return core.read_namespaced_pod(name, "default").status.phase


def _refusal(call) -> tuple[int, str]:
    with pytest.raises(client.ApiException) as caught:
        call()
    body = json.loads(caught.value.body)
    assert body["kind"] == "Status" and body["code"] == caught.value.status
    return caught.value.status, body["message"]


@pytest.fixture(scope="module")
def finished(core) -> str:
    _pod(core, "finished", _container("main", "for i in 1 2 3 4 5; do echo line$i; done"))
    eventually(lambda: _phase(core, "finished") == "Succeeded", timeout=30, what="pod finished")
    return "finished"


@pytest.fixture(scope="module")
def restarted(core) -> str:
    # The pod's /tmp outlives its container's runs: the first run fails, the second stays.
    script = "n=$(cat /tmp/runs 2>/dev/null || echo 0); echo run $n; echo $((n+1)) > /tmp/runs; " \
             "[ $n -gt 0 ] || exit 1; exec sleep 300"
    _pod(core, "restarted", _container("main", script), restart="Always")

    def running_again() -> bool:
        status = core.read_namespaced_pod("restarted", "default").status
        entry = (status.container_statuses or [None])[0]
        return bool(entry and entry.restart_count == 1 and entry.state.running)
    eventually(running_again, timeout=30, what="container restarted")
    return "restarted"


@pytest.fixture(scope="module")
def pair(core) -> str:
    _pod(core, "pair", _container("a", "echo from a; exec sleep 300"), _container("b", "echo from b; exec sleep 300"),
         restart="Always")
    eventually(lambda: _phase(core, "pair") == "Running", timeout=30, what="pod running")
    eventually(lambda: core.read_namespaced_pod_log("pair", "default", container="b") == "from b\n", timeout=10)
    return "pair"


def test_the_node_reports_the_kubelet_port(core) -> None:
    node = core.read_node(NODE)
    assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
    assert node.status.addresses[0].address == f"127.{INDEX}.0.1"


def test_logs_whole_tail_limit_since_and_timestamps(core, finished) -> None:
    read = core.read_namespaced_pod_log
    assert read(finished, "default") == "".join(f"line{i}\n" for i in range(1, 6))
    assert read(finished, "default", container="main", tail_lines=2) == "line4\nline5\n"
    assert read(finished, "default", tail_lines=0) == ""
    assert read(finished, "default", limit_bytes=8) == "line1\nli"
    assert read(finished, "default", since_seconds=3600) == "".join(f"line{i}\n" for i in range(1, 6))
    stamped = read(finished, "default", timestamps=True, tail_lines=2).splitlines()
    assert len(stamped) == 2 and all(re.fullmatch(f"{STAMP} line[45]", line) for line in stamped), stamped


def test_previous_logs_after_a_restart(core, restarted) -> None:
    assert core.read_namespaced_pod_log(restarted, "default") == "run 1\n"
    assert core.read_namespaced_pod_log(restarted, "default", previous=True) == "run 0\n"


def test_previous_without_a_previous_run_is_refused(core, finished) -> None:
    code, message = _refusal(lambda: core.read_namespaced_pod_log(finished, "default", previous=True))
    assert (code, message) == (400, 'previous terminated container "main" in pod "finished" not found')


def test_follow_streams_until_the_container_exits(core) -> None:
    _pod(core, "ticker", _container("main", "echo tick 1; sleep 3; echo tick 2"))
    eventually(lambda: _phase(core, "ticker") == "Running", timeout=30, what="pod running")
    stream = core.read_namespaced_pod_log("ticker", "default", follow=True, _preload_content=False,
                                          _request_timeout=30)
    try:
        received = b""
        chunks = stream.stream(1024)
        while b"tick 1\n" not in received:
            received += next(chunks)
        assert _phase(core, "ticker") == "Running"  # streamed while the container still runs
        started = time.monotonic()
        for chunk in chunks:  # ends by itself when the container exits
            received += chunk
        assert time.monotonic() - started < 20
    finally:
        stream.release_conn()
    assert received == b"tick 1\ntick 2\n"
    assert _phase(core, "ticker") == "Succeeded"


def test_container_choice_and_its_errors(core, pair) -> None:
    read = core.read_namespaced_pod_log
    assert read(pair, "default", container="a") == "from a\n"
    assert _refusal(lambda: read(pair, "default")) == (
        400, "a container name must be specified for pod pair, choose one of: [a b]")
    assert _refusal(lambda: read(pair, "default", container="nope")) == (
        400, "container nope is not valid for pod pair")


def test_unscheduled_missing_and_invalid_requests_are_refused(core, finished) -> None:
    _pod(core, "nowhere", _container("main", "true"), node=None)
    read = core.read_namespaced_pod_log
    assert _refusal(lambda: read("nowhere", "default")) == (400, "pod nowhere does not have a host assigned")
    assert _refusal(lambda: read("absent", "default")) == (404, 'pods "absent" not found')
    code, message = _refusal(lambda: read(finished, "default", tail_lines=-1))
    assert code == 422 and "tailLines: Invalid value: -1: must be greater than or equal to 0" in message
    core.delete_namespaced_pod("nowhere", "default")


def test_the_kubelet_serves_only_the_api_server(core) -> None:
    port = core.read_node(NODE).status.daemon_endpoints.kubelet_endpoint.port
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"https://127.{INDEX}.0.1:{port}/containerLogs/default/finished/main",
                               context=unverified, timeout=10)
    assert caught.value.code == 401


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_logs(control_plane, core, finished, restarted, pair) -> None:
    def kubectl(*args: str) -> str:
        result = subprocess.run([KUBECTL, "--kubeconfig", str(control_plane.kubeconfig), "logs", *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"kubectl logs {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    assert kubectl(finished, "--tail=2") == "line4\nline5\n"
    assert kubectl(restarted, "--previous") == "run 0\n"
    assert kubectl(pair, "-c", "b") == "from b\n"
    assert re.fullmatch(f"{STAMP} line5\n", kubectl(finished, "--timestamps", "--tail=1"))
    _pod(core, "kticker", _container("main", "echo one; sleep 1; echo two"))
    eventually(lambda: _phase(core, "kticker") in ("Running", "Succeeded"), timeout=30, what="pod started")
    assert kubectl("kticker", "-f") == "one\ntwo\n"
