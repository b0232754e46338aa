"""Pods as real processes in real mount namespaces, driven through PodRuntime."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from oci_layout.store import add_image
from local_cluster.kubelet.pod_sources import ClaimVolume, PodSources
from local_cluster.kubelet.proc import ProcessIdentity
from local_cluster.kubelet.runtime import PodRuntime

from tests.wait import eventually as wait_for

from .helpers import Node, make_pod, shell


def _uid(pod: dict[str, Any]) -> str:
    return pod["metadata"]["uid"]


def _phase(runtime: PodRuntime, pod: dict[str, Any], *phases: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = runtime.status(_uid(pod))
        return status if status and status["phase"] in phases else None

    return wait_for(reached, timeout=10)


def _container(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in status["containerStatuses"] + status.get("initContainerStatuses", []) if c["name"] == name)


def _log(node: Node, pod: dict[str, Any], container: str, attempt: int = 0) -> str:
    return (node.root / "pods" / _uid(pod) / "logs" / container / f"{attempt}.log").read_text()


def _running_pid(node: Node, pod: dict[str, Any], container: str, attempt: int = 0) -> ProcessIdentity:
    path = node.root / "pods" / _uid(pod) / "containers" / container / str(attempt) / "started.json"
    value = wait_for(lambda: path.exists() and json.loads(path.read_text()))
    return ProcessIdentity(value["pid"], value["startTicks"])


def test_empty_dir_mount_and_tmp_are_private_to_the_pod(node: Node, hostdir: Path) -> None:
    runtime = node.runtime()
    mount_path = hostdir / "mnt" / "data"
    pod = make_pod("writer", [shell("main", f"echo hello > {mount_path}/out; echo private > /tmp/marker; "
                                            "touch /tmp/started; exec sleep 30",
                                    volumeMounts=[{"name": "scratch", "mountPath": str(mount_path)}])],
                   volumes=[{"name": "scratch", "emptyDir": {}}])
    runtime.sync_pod(pod, PodSources())
    status = _phase(runtime, pod, "Running")
    pod_dir = node.root / "pods" / _uid(pod)
    wait_for(lambda: (pod_dir / "tmp" / "started").exists())
    assert (pod_dir / "volumes" / "empty-dir" / "scratch" / "out").read_text() == "hello\n"
    # The mount point exists on the host, but the mount itself lives only in the pod.
    assert mount_path.is_dir() and list(mount_path.iterdir()) == []
    assert str(mount_path) not in Path("/proc/self/mountinfo").read_text()
    assert (pod_dir / "tmp" / "marker").read_text() == "private\n"
    assert status["podIP"].startswith(f"127.{node.index}.")
    assert status["podIP"] != status["hostIP"] == f"127.{node.index}.0.1"
    assert [c["type"] for c in status["conditions"] if c["status"] == "True"] == [
        "PodScheduled", "Initialized", "ContainersReady", "Ready"]
    main = _container(status, "main")
    assert main["ready"] and main["started"] and main["restartCount"] == 0 and "running" in main["state"]
    runtime.terminate_pod(_uid(pod), grace_seconds=5)
    assert runtime.wait_terminated(_uid(pod), 5)
    runtime.remove_pod(_uid(pod))
    assert not pod_dir.exists()


def test_config_secret_host_path_env_and_read_only_mounts(node: Node, hostdir: Path) -> None:
    runtime = node.runtime()
    shared = hostdir / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("host file\n")
    results = hostdir / "results"
    script = "; ".join([
        "cat /etc/app/settings/app.conf",
        "stat -L -c 'cm %a' /etc/app/settings/app.conf",
        "stat -L -c 'secret %a' /etc/app/creds/password",
        "cat /etc/app/creds/password; echo",
        "cat /host/from-host",
        "echo \"env $POD_NAME $POD_NAMESPACE $NODE $LEVEL $PASSWORD $HOSTNAME\"",
        "echo \"uid $POD_UID ip $POD_IP\"",
        "touch /etc/app/settings/new 2>/dev/null && echo cm-writable || echo cm-read-only",
        "touch /host/new 2>/dev/null && echo host-writable || echo host-read-only",
        f"echo done > {results}/out",
    ])
    pod = make_pod("configured", [shell("main", script, env=[
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "level"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
    ], volumeMounts=[
        {"name": "settings", "mountPath": "/etc/app/settings"},
        {"name": "creds", "mountPath": "/etc/app/creds"},
        {"name": "host", "mountPath": "/host", "readOnly": True},
        {"name": "results", "mountPath": str(results)},
    ])], restartPolicy="Never", volumes=[
        {"name": "settings", "configMap": {"name": "app", "items": [
            {"key": "conf", "path": "app.conf", "mode": 0o640}]}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "host", "hostPath": {"path": str(shared), "type": "Directory"}},
        {"name": "results", "hostPath": {"path": str(results), "type": "DirectoryOrCreate"}},
    ])
    sources = PodSources(
        config_maps={"app": {"metadata": {"name": "app"}, "data": {"conf": "key=value\n", "level": "debug"}}},
        secrets={"creds": {"metadata": {"name": "creds"}, "data": {"password": base64.b64encode(b"s3cret").decode()}}},
    )
    runtime.sync_pod(pod, sources)
    status = _phase(runtime, pod, "Succeeded", "Failed")
    assert status["phase"] == "Succeeded", _log(node, pod, "main")
    terminated = _container(status, "main")["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert _log(node, pod, "main").splitlines() == [
        "key=value", "cm 640", "secret 400", "s3cret", "host file",
        "env configured default node-1 debug s3cret configured",
        f"uid {_uid(pod)} ip {status['podIP']}",
        "cm-read-only", "host-read-only",
    ]
    assert (results / "out").read_text() == "done\n" and not (shared / "new").exists()
    assert [c["status"] for c in status["conditions"] if c["type"] == "Ready"] == ["False"]


def test_never_fails_with_the_exit_code(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("fails", [shell("main", "echo bye; exit 7")], restartPolicy="Never")
    runtime.sync_pod(pod, PodSources())
    status = _phase(runtime, pod, "Failed")
    main = _container(status, "main")
    assert main["state"]["terminated"]["exitCode"] == 7 and main["state"]["terminated"]["reason"] == "Error"
    assert main["restartCount"] == 0 and _log(node, pod, "main") == "bye\n"


def test_on_failure_restarts_with_back_off(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("crashy", [shell("main", "echo attempt; exit 3")], restartPolicy="OnFailure")
    runtime.sync_pod(pod, PodSources())

    def restarted_twice() -> dict[str, Any] | None:
        status = runtime.status(_uid(pod))
        return status if status and _container(status, "main")["restartCount"] >= 2 else None

    status = wait_for(restarted_twice, timeout=10)
    assert status["phase"] == "Running"
    main = _container(status, "main")
    assert main["lastState"]["terminated"]["exitCode"] == 3
    seen = [_container(s, "main")["state"] for uid, s in node.statuses if uid == _uid(pod)]
    backing_off = [s["waiting"] for s in seen if s.get("waiting", {}).get("reason") == "CrashLoopBackOff"]
    assert backing_off and "back-off 0.3s restarting failed container=main" in backing_off[0]["message"]
    previous = runtime.log_path(_uid(pod), "main", previous=True)
    assert previous is not None and previous.read_text() == "attempt\n"
    # Only the current and the previous run's logs are kept, as kubelet does.
    assert len(list(previous.parent.glob("*.log"))) <= 2


def test_init_containers_run_in_order_before_containers(node: Node) -> None:
    runtime = node.runtime()
    mount = [{"name": "work", "mountPath": "/work"}]
    pod = make_pod(
        "initialised",
        [shell("main", "cat /work/steps", volumeMounts=mount)],
        initContainers=[shell("first", "echo one >> /work/steps", volumeMounts=mount),
                        shell("second", "echo two >> /work/steps", volumeMounts=mount)],
        restartPolicy="Never",
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    runtime.sync_pod(pod, PodSources())
    status = _phase(runtime, pod, "Succeeded", "Failed")
    assert status["phase"] == "Succeeded"
    assert _log(node, pod, "main") == "one\ntwo\n"
    assert [c["state"]["terminated"]["reason"] for c in status["initContainerStatuses"]] == ["Completed", "Completed"]

    failing = make_pod("init-fails", [shell("main", "echo never")],
                       initContainers=[shell("setup", "exit 2")], restartPolicy="Never")
    runtime.sync_pod(failing, PodSources())
    status = _phase(runtime, failing, "Failed")
    assert _container(status, "setup")["state"]["terminated"]["exitCode"] == 2
    assert _container(status, "main")["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_sigterm_is_honoured(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("polite", [shell("main", "trap 'echo got TERM; exit 0' TERM; touch /tmp/up; "
                                            "while :; do sleep 0.05; done")])
    runtime.sync_pod(pod, PodSources())
    _phase(runtime, pod, "Running")
    wait_for(lambda: (node.root / "pods" / _uid(pod) / "tmp" / "up").exists())
    began = time.monotonic()
    runtime.terminate_pod(_uid(pod), grace_seconds=10)
    assert runtime.wait_terminated(_uid(pod), 5)
    assert time.monotonic() - began < 3
    status = runtime.status(_uid(pod))
    assert _container(status, "main")["state"]["terminated"]["exitCode"] == 0
    assert "got TERM" in _log(node, pod, "main")
    assert status["phase"] == "Succeeded"


def test_sigkill_after_the_grace_period_when_term_is_ignored(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("stubborn", [shell("main", 'trap "" TERM; touch /tmp/up; while :; do sleep 0.05; done')],
                   terminationGracePeriodSeconds=1)
    runtime.sync_pod(pod, PodSources())
    _phase(runtime, pod, "Running")
    wait_for(lambda: (node.root / "pods" / _uid(pod) / "tmp" / "up").exists())
    container = _running_pid(node, pod, "main")
    began = time.monotonic()
    runtime.terminate_pod(_uid(pod))  # the pod's own grace period: 1 s
    assert runtime.wait_terminated(_uid(pod), 6)
    elapsed = time.monotonic() - began
    assert 0.9 <= elapsed < 4, elapsed
    assert not container.alive()
    terminated = _container(runtime.status(_uid(pod)), "main")["state"]["terminated"]
    assert terminated["exitCode"] == 137 and terminated["signal"] == 9
    assert runtime.status(_uid(pod))["phase"] == "Failed"


def test_exit_of_the_main_process_takes_its_leftovers_down(node: Node, hostdir: Path) -> None:
    runtime = node.runtime()
    pid_file = hostdir / "bg.pid"
    pod = make_pod("leaky", [shell("main", f"setsid sleep 30 & echo $! > {pid_file}; sleep 0.2; exit 0")],
                   restartPolicy="Never")
    runtime.sync_pod(pod, PodSources())
    _phase(runtime, pod, "Succeeded")
    background = int(pid_file.read_text())
    wait_for(lambda: not os.path.exists(f"/proc/{background}") or
             Path(f"/proc/{background}/stat").read_text().split(") ")[1][0] == "Z", timeout=5)


def test_kubelet_restart_adopts_running_pods_without_restarting_them(node: Node, hostdir: Path) -> None:
    first = node.runtime()
    stop_file = hostdir / "stop"
    script = f"touch /tmp/up; while [ ! -e {stop_file} ]; do sleep 0.05; done; exit 5"
    pod = make_pod("survivor", [shell("main", script)],
                   restartPolicy="Never")
    runtime_uid = _uid(pod)
    first.sync_pod(pod, PodSources())
    first_status = _phase(first, pod, "Running")
    before = _container(first_status, "main")
    container = _running_pid(node, pod, "main")
    first.close()  # the kubelet goes away; its pods do not

    second = node.runtime()
    assert second.recover() == [runtime_uid]
    status = _phase(second, pod, "Running")
    after = _container(status, "main")
    assert after["state"] == before["state"] and after["restartCount"] == 0
    assert status["podIP"] == first_status["podIP"] and status["startTime"] == first_status["startTime"]
    assert container.alive() and _running_pid(node, pod, "main") == container
    assert first.status(runtime_uid) is None
    second.sync_pod(pod, PodSources())
    stop_file.touch()
    # The exit code is not lost although the process belonged to the old kubelet.
    status = _phase(second, pod, "Failed")
    assert _container(status, "main")["state"]["terminated"]["exitCode"] == 5
    assert not (node.root / "pods" / runtime_uid / "containers" / "main" / "1").exists()


def test_oci_image_runs_its_entrypoint_on_its_own_root(node: Node, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for tool in ("sh", "cat", "ls", "echo"):
        os.symlink("busybox", rootfs / "bin" / tool)
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "motd").write_text("inside the image\n")
    digest = add_image(node.image_store, "registry.local/tests/tiny:v1", rootfs, {
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["cat /etc/motd; echo $GREETING; pwd; ls /; echo changed > /etc/motd; cat /etc/motd"],
        "Env": ["PATH=/bin", "GREETING=hi"],
        "WorkingDir": "/srv",
    })
    runtime = node.runtime()
    pod = make_pod("tiny", [{"name": "main", "image": "registry.local/tests/tiny:v1"}], restartPolicy="Never")
    runtime.sync_pod(pod, PodSources())
    status = _phase(runtime, pod, "Succeeded", "Failed")
    assert status["phase"] == "Succeeded", _log(node, pod, "main")
    assert _container(status, "main")["imageID"] == f"registry.local/tests/tiny@{digest}"
    lines = _log(node, pod, "main").splitlines()
    assert lines[:3] == ["inside the image", "hi", "/srv"] and lines[-1] == "changed"
    assert {"bin", "etc", "proc", "dev", "tmp", "srv"} <= set(lines[3:-1])
    # The run's writes went to its own layer, not to the shared unpacked image.
    cached = node.root / "images" / digest.split(":")[1] / "rootfs" / "etc" / "motd"
    assert cached.read_text() == "inside the image\n"


def test_image_and_config_errors_are_waiting_reasons(node: Node) -> None:
    runtime = node.runtime()
    missing_image = make_pod("nopull", [{"name": "main", "image": "registry.local/absent:v1"}])
    runtime.sync_pod(missing_image, PodSources())
    waiting = wait_for(lambda: _container(runtime.status(_uid(missing_image)), "main")["state"].get("waiting", {})
                       .get("reason") in ("ErrImagePull", "ImagePullBackOff") and
                       _container(runtime.status(_uid(missing_image)), "main")["state"]["waiting"])
    assert "image registry.local/absent:v1 not found in" in waiting["message"]

    needs_config = make_pod("needs-config", [shell("main", "echo $LEVEL; exec sleep 30", env=[
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "level"}}}])])
    runtime.sync_pod(needs_config, PodSources())
    wait_for(lambda: _container(runtime.status(_uid(needs_config)), "main")["state"].get("waiting", {})
             .get("reason") == "CreateContainerConfigError")
    assert runtime.status(_uid(needs_config))["phase"] == "Pending"
    late = {"metadata": {"name": "late"}, "data": {"level": "info"}}
    runtime.sync_pod(needs_config, PodSources(config_maps={"late": late}))
    _phase(runtime, needs_config, "Running")
    wait_for(lambda: _log(node, needs_config, "main") == "info\n")


def test_escaping_volume_names_never_start_the_pod(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("escape", [shell("main", "exec sleep 30")], volumes=[{"name": "..", "emptyDir": {}}])
    runtime.sync_pod(pod, PodSources())
    waiting = wait_for(lambda: _container(runtime.status(_uid(pod)), "main")["state"].get("waiting", {}).get("message"))
    assert "not a valid DNS-1123 label" in waiting
    assert not list((node.root / "pods" / _uid(pod)).glob("containers/*/*"))


def test_block_claim_is_exposed_at_its_device_path(node: Node, hostdir: Path) -> None:
    disk = hostdir / "disk.img"
    disk.write_bytes(b"BLOCKDATA" + b"\0" * 503)
    runtime = node.runtime()
    pod = make_pod("blocky", [shell("main", "head -c 9 /dev/vdz-test; echo", volumeDevices=[
        {"name": "disk", "devicePath": "/dev/vdz-test"}])], restartPolicy="Never",
        volumes=[{"name": "disk", "persistentVolumeClaim": {"claimName": "pvc-1"}}])
    runtime.sync_pod(pod, PodSources(claims={"pvc-1": ClaimVolume(disk, block=True)}))
    assert _phase(runtime, pod, "Succeeded", "Failed")["phase"] == "Succeeded", _log(node, pod, "main")
    assert _log(node, pod, "main") == "BLOCKDATA\n"
    assert not Path("/dev/vdz-test").exists() or Path("/dev/vdz-test").stat().st_size == 0


def test_readiness_probe_gates_ready(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("probed", [shell("main", "sleep 0.6; touch /tmp/ready; exec sleep 30", readinessProbe={
        "exec": {"command": ["test", "-e", "/tmp/ready"]}, "periodSeconds": 0.2, "failureThreshold": 1})])
    runtime.sync_pod(pod, PodSources())
    status = _phase(runtime, pod, "Running")
    assert not _container(status, "main")["ready"]
    wait_for(lambda: _container(runtime.status(_uid(pod)), "main")["ready"], timeout=5)
    ready = [c for c in runtime.status(_uid(pod))["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"


_KUBELET_PROCESS = """
import json, sys, time
from pathlib import Path
from local_cluster.kubelet.pod_sources import PodSources
from local_cluster.kubelet.runtime import NodeConfig, PodRuntime
root, pod, uid, index = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
runtime = PodRuntime(NodeConfig(root=root, node_name="node-1", node_index=index, poll_interval=0.03))
runtime.sync_pod(pod, PodSources())
while runtime.status(uid).get("phase") != "Running":
    time.sleep(0.02)
print("running", flush=True)
time.sleep(60)
"""


def test_a_new_kubelet_process_adopts_pods_of_a_killed_one(node: Node, hostdir: Path) -> None:
    stop_file = hostdir / "stop"
    pod = make_pod("orphan", [shell("main", f"while [ ! -e {stop_file} ]; do sleep 0.05; done; exit 4")],
                   restartPolicy="Never")
    argv = [sys.executable, "-c", _KUBELET_PROCESS, str(node.root), json.dumps(pod), _uid(pod), str(node.index)]
    kubelet = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert kubelet.stdout is not None and kubelet.stdout.readline() == "running\n"
        container = _running_pid(node, pod, "main")
    finally:
        kubelet.send_signal(signal.SIGKILL)
        kubelet.wait(timeout=5)
    assert container.alive()
    runtime = node.runtime()
    assert runtime.recover() == [_uid(pod)]
    assert _container(_phase(runtime, pod, "Running"), "main")["restartCount"] == 0
    stop_file.touch()
    status = _phase(runtime, pod, "Failed")
    assert _container(status, "main")["state"]["terminated"]["exitCode"] == 4


def test_http_readiness_and_tcp_liveness_against_the_pod_ip(node: Node) -> None:
    runtime = node.runtime()
    server = {
        "name": "web",
        "command": [sys.executable, "-m", "http.server", "--bind", "$(POD_IP)", "18080"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 18080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 0.2},
        "livenessProbe": {"tcpSocket": {"port": 18080}, "periodSeconds": 0.2, "failureThreshold": 50},
    }
    pod = make_pod("web", [server])
    runtime.sync_pod(pod, PodSources())
    status = wait_for(lambda: _container(runtime.status(_uid(pod)), "web")["ready"] and runtime.status(_uid(pod)))
    assert status["phase"] == "Running" and _container(status, "web")["restartCount"] == 0
    assert [c["status"] for c in status["conditions"] if c["type"] == "ContainersReady"] == ["True"]


def test_failing_liveness_probe_restarts_the_container(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("unhealthy", [shell("main", "exec sleep 30", livenessProbe={
        "exec": {"command": ["false"]}, "periodSeconds": 0.2, "failureThreshold": 2})],
        terminationGracePeriodSeconds=0)
    runtime.sync_pod(pod, PodSources())
    status = wait_for(lambda: _container(runtime.status(_uid(pod)), "main")["restartCount"] >= 1
                      and runtime.status(_uid(pod)))
    assert _container(status, "main")["lastState"]["terminated"]["exitCode"] in (137, 143)


def test_host_network_pods_share_the_node_address_and_hostname(node: Node) -> None:
    runtime = node.runtime()
    pod = make_pod("hostnet", [shell("main", "hostname")], hostNetwork=True, restartPolicy="Never")
    isolated = make_pod("isolated", [shell("main", "hostname")], restartPolicy="Never")
    runtime.sync_pod(pod, PodSources())
    runtime.sync_pod(isolated, PodSources())
    status = _phase(runtime, pod, "Succeeded")
    assert status["podIP"] == status["hostIP"] == f"127.{node.index}.0.1"
    assert _log(node, pod, "main") == f"{os.uname().nodename}\n"
    _phase(runtime, isolated, "Succeeded")
    assert _log(node, isolated, "main") == "isolated\n"


def test_a_start_is_seen_at_once_and_the_command_inherits_no_kubelet_pipe(node: Node) -> None:
    # Polling alone would report the start only a minute later: the trampoline's "started"
    # pipe wakes the pod worker. The pipe ends in the trampoline; the command holds only stdio.
    runtime = node.runtime(poll_interval=60.0)
    pod = make_pod("quick", [shell("main", "exec sleep 30")], restartPolicy="Never")
    runtime.sync_pod(pod, PodSources())
    status = _phase(runtime, pod, "Running")
    assert _container(status, "main")["state"]["running"]
    started = next(node.root.glob(f"pods/{_uid(pod)}/containers/main/*/started.json"))
    fd_dir = Path(f"/proc/{json.loads(started.read_text())['pid']}/fd")
    targets = {fd: os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)}
    assert sorted(targets) == ["0", "1", "2"], targets
