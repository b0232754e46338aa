"""kill -9 of each component while 20 VMIs run (libvirt's test driver): no guest is lost
and every VMI is Running again. After each kill the component comes back the way a real
cluster brings it back (the kubelet restarts a pod's container, the supervisor restarts
a kubelet as systemd would), and one new VMI reaching Running shows the whole path works.

Plain VMIs, not VMs: a lost guest would be replaced under a VM and could go unnoticed.
"Not lost" means the same VMI (uid), the same launcher pod (uid, container never
restarted, same start time), and no new phase transition (no second Scheduled/Running).

Its own cluster: the kills must not disturb the other modules' guests."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from kubernetes import client

from kubevirt_api import labels
from tests.e2e.cluster import (NAMESPACE, Kubevirt, _cmdline, _environ, kill_9, local_kubevirt, virtctl,
                               vm_manifest)
from tests.wait import eventually

pytestmark = pytest.mark.slow

FLEET = 20
FLEET_LABEL = "fault-fleet"
RECOVERY_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def kubevirt() -> Iterator[Kubevirt]:
    state_dir = None
    try:
        with local_kubevirt(nodes=2) as cluster:
            state_dir = cluster.state_dir
            yield cluster
    finally:
        if state_dir is not None:
            _stop_orphaned_kubelets(state_dir)


def _stop_orphaned_kubelets(state_dir: Path) -> None:
    """Kubelets outlive a killed control plane; if it did not come back, `local down` had no
    supervisor to stop them through. SIGTERM stops their pods, as a node shutdown does."""
    def orphans() -> list[int]:
        return _matching(lambda pid: "local_cluster.kubelet" in _cmdline(pid)
                         and any(a.startswith(str(state_dir / "nodes")) for a in _cmdline(pid)))
    left = orphans()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        eventually(lambda: not orphans(), timeout=60, what="orphaned kubelets stopped", interval=0.2)
    finally:
        kill_9(orphans())
    assert not left, f"kubelets {left} were left running after the cluster went down"


def _vmi_manifest(name: str) -> dict:
    template = vm_manifest(name, "Always", test_driver=True)["spec"]["template"]
    template["metadata"]["labels"] = {"app": FLEET_LABEL} if name.startswith("fleet-") else {}
    template["spec"]["domain"]["resources"]["requests"]["memory"] = "32Mi"
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", **template,
            "metadata": {**template["metadata"], "name": name}}


def _create(kubevirt: Kubevirt, name: str) -> None:
    """Retried while admission cannot be called (virt-api starting or restarting), as a client would."""
    def attempt() -> bool:
        try:
            kubevirt.create("virtualmachineinstances", _vmi_manifest(name))
        except client.ApiException as error:
            if error.status == 409:
                return True
            if error.status >= 500:
                return False
            raise
        return True
    eventually(attempt, timeout=RECOVERY_TIMEOUT, what=f"VMI {name} created", interval=0.3)


def _fleet_vmis(kubevirt: Kubevirt) -> list[dict]:
    return kubevirt.custom.list_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, "virtualmachineinstances",
                                                         label_selector=f"app={FLEET_LABEL}")["items"]


def _launcher_pods(kubevirt: Kubevirt) -> dict[str, dict]:
    """Launcher pods by the uid of their VMI."""
    pods = kubevirt.core.list_namespaced_pod(NAMESPACE, label_selector=f"{labels.APP_LABEL}=virt-launcher").items
    return {p.metadata.labels[labels.CREATED_BY_LABEL]: kubevirt.api.sanitize_for_serialization(p) for p in pods
            if not p.metadata.deletion_timestamp}


def _identity(vmi: dict, pod: dict | None) -> tuple:
    """What changes if the guest was lost and started again."""
    status = vmi.get("status") or {}
    transitions = tuple((t.get("phase"), t.get("phaseTransitionTimestamp"))
                        for t in status.get("phaseTransitionTimestamps") or [])
    container = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
    started = ((container[0].get("state") or {}).get("running") or {}).get("startedAt")
    return (vmi["metadata"]["uid"], status.get("nodeName"), transitions, (pod or {}).get("metadata", {}).get("uid"),
            container[0].get("restartCount"), started)


def _snapshot(kubevirt: Kubevirt) -> dict[str, tuple] | None:
    """Identity of every fleet VMI when all are Running with a running launcher, else None
    (also while the API server cannot answer yet: its store or itself restarting)."""
    try:
        return _snapshot_now(kubevirt)
    except client.ApiException as error:
        if error.status >= 500:
            return None
        raise


def _snapshot_now(kubevirt: Kubevirt) -> dict[str, tuple] | None:
    vmis = _fleet_vmis(kubevirt)
    if len(vmis) != FLEET or any((v.get("status") or {}).get("phase") != "Running" for v in vmis):
        return None
    pods = _launcher_pods(kubevirt)
    if any((pods.get(v["metadata"]["uid"]) or {}).get("status", {}).get("phase") != "Running" for v in vmis):
        return None
    processes = _compute_processes()
    return {v["metadata"]["name"]: (*_identity(v, pods[v["metadata"]["uid"]]),
                                    processes.get(pods[v["metadata"]["uid"]]["metadata"]["uid"]))
            for v in vmis}


def _compute_processes() -> dict[str, tuple[int, ...]]:
    """The processes of each pod's compute container (the launcher and the test driver's
    domain), by pod uid: the same pids after a kill mean the guest was never restarted."""
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            for arg in _cmdline(entry.name):
                if "/pods/" in arg and "/containers/compute/" in arg:
                    found.setdefault(arg.split("/pods/", 1)[1].split("/", 1)[0], []).append(int(entry.name))
                    break
    return {uid: tuple(sorted(pids)) for uid, pids in found.items()}


@pytest.fixture(scope="module")
def fleet(kubevirt: Kubevirt) -> dict[str, tuple]:
    for index in range(FLEET):
        _create(kubevirt, f"fleet-{index:02d}")
    snapshot = eventually(lambda: _snapshot(kubevirt), timeout=120, what=f"{FLEET} VMIs Running", interval=0.5)
    nodes = {identity[1] for identity in snapshot.values()}
    assert len(nodes) == 2, f"the fleet should spread over both nodes, got {nodes}"
    assert all(identity[-1] for identity in snapshot.values()), "a launcher pod without processes"
    return snapshot


# --- the processes of each component ------------------------------------------------------

def _matching(predicate) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and predicate(entry.name):
            found.append(int(entry.name))
    return found


def _in_cluster(kubevirt: Kubevirt, module: str, pid: str) -> bool:
    """A component pod's main process (python -m MODULE) talking to this cluster's API server."""
    argv = _cmdline(pid)
    if module not in argv[:3] or "-m" not in argv[:3]:
        return False
    port = str(urlparse(kubevirt.api.configuration.host).port)
    return _environ(pid).get("KUBERNETES_SERVICE_PORT") == port


def _component(module: str):
    return lambda kubevirt: _matching(lambda pid: _in_cluster(kubevirt, module, pid))


def _kubelet(node: str):
    root = f"nodes/{node}"

    def find(kubevirt: Kubevirt) -> list[int]:
        def is_it(pid: str) -> bool:
            argv = _cmdline(pid)
            return "local_cluster.kubelet" in argv and any(a == str(kubevirt.state_dir / root) for a in argv)
        return _matching(is_it)
    return find


def _etcd(kubevirt: Kubevirt) -> list[int]:
    data_dir = f"--data-dir={kubevirt.state_dir / 'etcd' / 'data'}"
    return _matching(lambda pid: data_dir in _cmdline(pid) and Path(_cmdline(pid)[0]).name != "setpriv")


def _api_server(kubevirt: Kubevirt) -> list[int]:
    """The API server runs in the local cluster's supervisor process, with the scheduler and
    the workload controllers; etcd is its child and dies with it."""
    return _matching(lambda pid: "local_cluster.supervisor" in _cmdline(pid)
                     and str(kubevirt.state_dir) in _cmdline(pid))


def _restart_control_plane(kubevirt: Kubevirt, victims: list[int]) -> None:
    """What systemd would do for a control plane unit: start it again, on the same state
    (etcd data, certificates, API server port). The nodes' kubelets kept running."""
    eventually(lambda: not _api_server(kubevirt) and not _etcd(kubevirt), timeout=30,
               what="control plane processes gone", interval=0.1)
    virtctl("local", "up", "--nodes", "2", "--state-dir", str(kubevirt.state_dir))


COMPONENTS = {
    "virt-api": _component("virt_api"),
    "virt-controller": _component("virt_controller"),
    "virt-handler": _component("virt_handler"),
    "kubelet": _kubelet("node01"),
    "etcd": _etcd,
    "api-server": _api_server,
}
# Components nothing on the machine restarts by itself (everything else: the kubelet or
# the supervisor does).
RESTART = {"api-server": _restart_control_plane}


# --- the test -----------------------------------------------------------------------------

def _probe(kubevirt: Kubevirt, name: str) -> None:
    """A new VMI goes all the way to Running: admission, controller, scheduler, kubelet, handler."""
    _create(kubevirt, name)
    eventually(lambda: kubevirt.running_vmi(name), timeout=RECOVERY_TIMEOUT, what=f"new VMI {name} Running",
               interval=0.3)
    kubevirt.delete("virtualmachineinstances", name)
    eventually(lambda: kubevirt.vmi(name) is None, timeout=RECOVERY_TIMEOUT, what=f"VMI {name} removed",
               interval=0.3)


@pytest.mark.parametrize("component", list(COMPONENTS))
def test_kill_9_loses_no_guest(kubevirt: Kubevirt, fleet: dict[str, tuple], component: str) -> None:
    find = COMPONENTS[component]
    victims = find(kubevirt)
    assert victims, f"no {component} process found"
    start = time.monotonic()
    kill_9(victims)
    if component in RESTART:
        RESTART[component](kubevirt, victims)
    eventually(lambda: len(find(kubevirt)) >= len(victims) and not set(find(kubevirt)) & set(victims),
               timeout=RECOVERY_TIMEOUT, what=f"{component} restarted", interval=0.2)
    back = time.monotonic() - start
    snapshot = eventually(lambda: _snapshot(kubevirt), timeout=RECOVERY_TIMEOUT, what="every VMI Running",
                          interval=0.3)
    changed = {name: (fleet[name], now) for name, now in snapshot.items() if now != fleet[name]}
    assert not changed, f"guests lost or restarted after kill -9 of {component}: {changed}"
    _probe(kubevirt, f"probe-{component}")
    print(f"kill -9 {component} ({len(victims)} processes): back in {back:.1f}s, "
          f"new VMI Running after {time.monotonic() - start:.1f}s")
