"""The whole product on the local cluster, for end-to-end tests: virt-controller and
virt-handler run as pods from deploy/, launchers as pods the controller creates."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from kubernetes import client

from guest_image import markers
from kube_client.config import load_api_client
from kubevirt_api import labels
from kubevirt_api.pod_layout import HYPERVISOR_ANNOTATION
from local_cluster.guest_console import serial_log_path
from local_cluster.kubevirt_readiness import missing_components
from tests.wait import eventually

Obj = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
GROUP, VERSION = "kubevirt.io", "v1"


def virtctl(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "virtctl", *args], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    if result.returncode != 0:
        raise AssertionError(f"virtctl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@contextlib.contextmanager
def local_kubevirt(nodes: int) -> Iterator[Kubevirt]:
    """A fresh local cluster with kubevirt-py deployed from deploy/, torn down after."""
    state_dir = Path(tempfile.mkdtemp(prefix="kv-e2e-", dir="/tmp"))
    try:
        virtctl("local", "up", "--nodes", str(nodes), "--state-dir", str(state_dir))
        api = load_api_client(state_dir / "kubeconfig")
        eventually(lambda: not missing_components(api, nodes), timeout=120, what="virt-controller and virt-handler",
                   interval=0.5)
        yield Kubevirt(state_dir, api)
    finally:
        subprocess.run([sys.executable, "-m", "virtctl", "local", "down", "--state-dir", str(state_dir)],
                       capture_output=True, timeout=300, cwd=REPO)
        if os.environ.get("KUBEVIRT_PY_KEEP_E2E_STATE"):  # logs and serial consoles, for a post-mortem
            print(f"kept {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


@dataclass
class Kubevirt:
    state_dir: Path
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    # --- objects --------------------------------------------------------------------------

    def create(self, plural: str, obj: Obj) -> Obj:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, obj)

    def get(self, plural: str, name: str) -> Obj | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch(self, plural: str, name: str, body: Obj) -> Obj:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name, body)

    def delete(self, plural: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def component_pids(self, module: str, node: str) -> list[int]:
        """Processes of one of our components (virt_handler, ...) on a node of this cluster:
        other clusters on the machine have nodes of the same names, not our API server."""
        port = str(urlparse(self.api.configuration.host).port)
        return pids(argv_has=module, env={"NODE_NAME": node, "KUBERNETES_SERVICE_PORT": port})

    def vmi(self, name: str) -> Obj | None:
        return self.get("virtualmachineinstances", name)

    def running_vmi(self, name: str) -> Obj | None:
        vmi = self.vmi(name)
        return vmi if vmi and (vmi.get("status") or {}).get("phase") == "Running" else None

    def launcher_pods(self, vmi_uid: str) -> list[Obj]:
        pods = self.core.list_namespaced_pod(NAMESPACE, label_selector=f"{labels.CREATED_BY_LABEL}={vmi_uid}").items
        return [self.api.sanitize_for_serialization(p) for p in pods]

    # --- the guest ------------------------------------------------------------------------

    def serial_log(self, vmi: Obj) -> Path:
        pods = self.launcher_pods(vmi["metadata"]["uid"])
        assert pods, f"no launcher pod for VMI {vmi['metadata']['name']}"
        return serial_log_path(self.state_dir, pods[0], vmi["metadata"]["uid"])

    def console(self, vmi: Obj) -> list[str]:
        try:
            return self.serial_log(vmi).read_text(errors="replace").splitlines()
        except OSError:
            return []


def last_counter(lines: list[str]) -> int:
    values = [v for v in (markers.counter_value(line) for line in lines) if v is not None]
    return values[-1] if values else 0


def vm_manifest(name: str, run_strategy: str, *, test_driver: bool = False, user_data: str | None = None) -> Obj:
    """A VM of the tiny guest; test_driver: libvirt's test driver instead of QEMU."""
    demo = yaml.safe_load((REPO / "deploy" / "examples" / "vm-demo.yaml").read_text())
    vm = copy.deepcopy(demo)
    vm["metadata"] = {"name": name, "labels": {labels.VM_LABEL: name}}
    vm["spec"]["runStrategy"] = run_strategy
    template = vm["spec"]["template"]
    template["metadata"] = {"labels": {labels.VM_LABEL: name}}
    if test_driver:
        template["metadata"]["annotations"] = {HYPERVISOR_ANNOTATION: "test"}
    if user_data is not None:
        template["spec"]["volumes"][1]["cloudInitNoCloud"]["userData"] = user_data
    return vm


# --- processes ----------------------------------------------------------------------------

def _environ(pid: str) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _cmdline(pid: str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def pids(*, argv_has: str, env: dict[str, str] | None = None) -> list[int]:
    """Processes whose command line contains argv_has and whose environment has env."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not any(argv_has in arg for arg in _cmdline(entry)):
            continue
        environ = _environ(entry)
        if all(environ.get(k) == v for k, v in (env or {}).items()):
            found.append(int(entry))
    return found


def kill_9(pid_list: list[int]) -> None:
    for pid in pid_list:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def qemu_pids(vmi_uid: str) -> list[int]:
    return [pid for pid in pids(argv_has=vmi_uid) if _cmdline(str(pid))[0].endswith("qemu-system-x86_64")]
