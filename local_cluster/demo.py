"""`./build.sh demo`: the main job, run on a freshly set-up machine.

Brings up the local cluster (two nodes, with virt-controller and virt-handler
deployed from deploy/), applies the demo VM from deploy/examples/, shows its way to
Running, prints the guest's serial console up to the cloud-init marker, and leaves
everything running for the user to explore.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from guest_image import markers
from kube_client.config import load_api_client
from kubevirt_api import labels
from local_cluster.apply import apply
from local_cluster.guest_console import serial_log_path
from local_cluster.kubevirt_readiness import missing_components
from local_cluster.state_dir import DEFAULT_STATE_DIR

REPO = Path(__file__).resolve().parents[1]
DEMO_VM = REPO / "deploy" / "examples" / "vm-demo.yaml"
VM_NAME = "demo"
NAMESPACE = "default"
COMPONENTS_TIMEOUT = 180.0
RUNNING_TIMEOUT = 240.0
CONSOLE_TIMEOUT = 120.0
COUNTER_LINES = 3

Obj = dict[str, Any]


class DemoFailed(RuntimeError):
    pass


def say(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def _wait(what: str, check: Callable[[], str | None], timeout: float) -> None:
    """check returns None when done, else a short progress text shown while waiting:
    rewritten in place on a terminal, one line per change otherwise (logs, CI)."""
    started = time.monotonic()
    tty = sys.stdout.isatty()
    shown = ""
    while True:
        progress = check()
        elapsed = time.monotonic() - started
        if progress is None:
            say(f"\r  {what}: done in {elapsed:.1f}s\033[K" if tty else f"  {what}: done in {elapsed:.1f}s")
            return
        if elapsed > timeout:
            say("")
            raise DemoFailed(f"{what}: still {progress} after {timeout:.0f}s")
        if tty:
            say(f"\r  {what}: {progress} ({elapsed:.0f}s)\033[K", end="")
        elif progress != shown:
            say(f"  {what}: {progress} ({elapsed:.0f}s)")
        shown = progress
        time.sleep(0.5)


def _cluster_up(state_dir: Path, nodes: int) -> None:
    result = subprocess.run([sys.executable, "-m", "virtctl", "local", "up", "--nodes", str(nodes),
                             "--state-dir", str(state_dir)], cwd=REPO, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise DemoFailed(f"the local cluster did not start:\n{result.stdout}{result.stderr}")


def _components_progress(api: client.ApiClient, nodes: int) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = missing_components(api, nodes)
        return "waiting for " + ", ".join(missing) if missing else None

    return check


def _get(custom: client.CustomObjectsApi, plural: str) -> Obj | None:
    try:
        return custom.get_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, plural, VM_NAME)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def _vm_progress(custom: client.CustomObjectsApi, phases: list[str]) -> Callable[[], str | None]:
    def check() -> str | None:
        vm = _get(custom, "virtualmachines") or {}
        vmi = _get(custom, "virtualmachineinstances") or {}
        phase = (vmi.get("status") or {}).get("phase") or "-"
        if phase not in phases:
            phases.append(phase)
        if phase == "Running":
            return None
        printable = (vm.get("status") or {}).get("printableStatus", "-")
        return f"VM {printable}, VMI " + " -> ".join(p for p in phases if p != "-")

    return check


def _launcher_pod(core: client.CoreV1Api, vmi_uid: str) -> Obj:
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"{labels.CREATED_BY_LABEL}={vmi_uid}").items
    if not pods:
        raise DemoFailed(f"no launcher pod for VMI {VM_NAME}")
    return core.api_client.sanitize_for_serialization(pods[0])


def _console_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def _show_console(path: Path) -> None:
    def check() -> str | None:
        lines = _console_lines(path)
        counters = [line for line in lines if markers.counter_value(line) is not None]
        if any(markers.USERDATA_DONE in line for line in lines) and len(counters) >= COUNTER_LINES:
            return None
        return f"{len(lines)} console lines so far"

    _wait("guest boot and cloud-init", check, CONSOLE_TIMEOUT)
    say("\n--- serial console of VMI demo " + "-" * 40)
    lines = _console_lines(path)
    # The kernel's own boot messages are many; the guest's userspace is the story.
    start = next((i for i, line in enumerate(lines) if markers.BOOTED in line), 0)
    if start:
        say(f"  ... {start} lines of kernel boot messages ...")
    shown = 0
    for line in lines[start:]:
        text = line.rstrip()
        if not text:
            continue
        say(f"  {text}")
        if markers.counter_value(text) is not None:
            shown += 1
            if shown >= COUNTER_LINES:
                break
    say("-" * 71)


def _next_steps(state_dir: Path, node: str, log: Path) -> str:
    kubeconfig = state_dir / "kubeconfig"
    return f"""
The demo VM is running on {node}. Everything stays up; try:

  export KUBECONFIG={kubeconfig}
  kubectl get vms,vmis                       # printableStatus, phase, node, IP
  kubectl get pods -A -o wide                # virt-controller x2, virt-handler per node, the launcher
  kubectl patch vm demo --type merge -p '{{"spec":{{"runStrategy":"Halted"}}}}'   # stop it
  kubectl patch vm demo --type merge -p '{{"spec":{{"runStrategy":"Always"}}}}'   # start it again
  kubectl get vmi demo -o yaml               # status: phase, conditions, interfaces, node
  .venv/bin/virtctl console demo             # its serial console (^] to leave)
  .venv/bin/virtctl restart demo

  .venv/bin/virtctl local status
  .venv/bin/virtctl local down               # stop the local cluster
(kubectl is not a Debian package; the official Python client works the same way.)
"""


def run(state_dir: Path, nodes: int) -> None:
    say(f"kubevirt-py demo: a local cluster with {nodes} nodes and one VM (state in {state_dir})")
    say("  starting the local cluster (etcd, API server, scheduler, kubelets) ...")
    _cluster_up(state_dir, nodes)
    api = load_api_client(state_dir / "kubeconfig")
    _wait("virt-controller and virt-handler", _components_progress(api, nodes), COMPONENTS_TIMEOUT)
    for line in apply(api, [DEMO_VM], namespace=NAMESPACE):
        say(f"  applied {line}")
    custom = client.CustomObjectsApi(api)
    phases: list[str] = []
    _wait(f"VM {VM_NAME} to Running", _vm_progress(custom, phases), RUNNING_TIMEOUT)
    vmi = _get(custom, "virtualmachineinstances") or {}
    status = vmi.get("status") or {}
    addresses = ", ".join(i.get("ipAddress", "") for i in status.get("interfaces") or [] if i.get("ipAddress"))
    say(f"  VMI {VM_NAME}: {' -> '.join(p for p in phases if p != '-')} on {status.get('nodeName')}"
        f"{f', IP {addresses}' if addresses else ''}")
    pod = _launcher_pod(client.CoreV1Api(api), vmi["metadata"]["uid"])
    log = serial_log_path(state_dir, pod, vmi["metadata"]["uid"])
    _show_console(log)
    say(_next_steps(state_dir, str(status.get("nodeName")), log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description="Run the kubevirt-py demo on a local cluster.")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        run(args.state_dir, args.nodes)
    except DemoFailed as failure:
        sys.stderr.write(f"\ndemo failed: {failure}\nLogs: {args.state_dir}/supervisor.log and "
                         f"{args.state_dir}/nodes/*/kubelet.log\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
