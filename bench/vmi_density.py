"""VMI density and start-up on the local cluster, measured in one run. Prints figures only.

1. Density: --vmis VMIs (default 200) on libvirt's hypervisor-free test driver (the VMI
   annotation kubevirt-py.io/hypervisor=test), created as fast as the API takes them from
   a small thread pool. The whole path is real: API -> virt-controller -> launcher pod ->
   kubelet -> virt-launcher -> virt-handler status. Figures: wall time to all Running,
   create -> Running p50/p95/max, VMIs/s, memory, then delete -> every launcher pod gone.
2. Real guests: --tcg VMIs (default 3) of the demo guest under QEMU, one at a time:
   create -> Running and create -> the guest's BOOTED serial line, against a direct start
   of the same domain XML (the one the launcher wrote) on a private libvirtd: createXML
   -> domain running and -> BOOTED. The baseline excludes libvirtd's start and the disk
   preparation (a fresh qcow2 overlay of the same backing image, a copy of the
   cloud-init ISO), which the product's figure includes.

create -> Running is measured client-side: the clock starts just before the create call
and stops when a watch on the VMIs first shows status.phase == Running.

Density VMIs request 32Mi of guest memory and 10m of CPU so that --vmis 200 fit the
scheduler on two simulated nodes of this machine (the default 100m per vCPU allows ~19
launchers per 2-core node); the test driver allocates neither.

    .venv/bin/python -m bench.vmi_density [--vmis 200] [--tcg 3] [--nodes 2] [--keep-state]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import copy
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import libvirt
import yaml
from kubernetes import client, watch

from guest_image import markers
from kube_client.config import load_api_client
from kubevirt_api import labels
from kubevirt_api.pod_layout import HYPERVISOR_ANNOTATION
from local_cluster.guest_console import serial_log_path
from local_cluster.kubevirt_readiness import missing_components
from virt_launcher.libvirtd import Libvirtd

Obj = dict[str, Any]
REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION, NAMESPACE, PLURAL = "kubevirt.io", "v1", "default", "virtualmachineinstances"
LAUNCHER_SELECTOR = f"{labels.APP_LABEL}={labels.VIRT_LAUNCHER}"
LAUNCHER_LOGS = "nodes/*/pods/*/logs/compute/*.log"
IDLE_SAMPLE_SECONDS = 20
_MIB = 1024 * 1024
_LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# --- memory ---------------------------------------------------------------------------

def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _proc_field(pid: int, name: str, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


_COMPONENTS = (("-m virt_launcher", "launchers"), ("sandbox_init", "sandbox_init"), ("-m virt_handler", "handlers"),
               ("-m virt_controller", "controllers"), ("local_cluster.kubelet", "kubelets"),
               ("local_cluster.supervisor", "apiserver+scheduler"), ("etcd", "etcd"), ("libvirtd", "libvirtd"),
               ("qemu-system", "qemu"))


def cpu_by_process(supervisor: int) -> dict[int, tuple[str, float]]:
    """pid -> (component, CPU seconds so far) for the cluster's processes."""
    found = {}
    for pid in [supervisor, *descendants(supervisor)]:
        line = cmdline(pid)
        kind = next((name for needle, name in _COMPONENTS if needle in line), "other")
        found[pid] = (kind, _cpu_seconds(pid))
    return found


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    delta: dict[str, float] = collections.defaultdict(float)
    for pid, (kind, seconds) in after.items():
        delta[kind] += seconds - (before.get(pid, (kind, 0.0))[1])
    return dict(delta)


def launcher_usage(supervisor: int) -> tuple[int, float, float, float]:
    """(launchers, their RSS MiB, PSS MiB, CPU seconds so far), counting each launcher's
    sandbox_init too."""
    count, rss, pss, cpu = 0, 0.0, 0.0, 0.0
    for pid in descendants(supervisor):
        line = cmdline(pid)
        is_launcher = "-m virt_launcher" in line
        if is_launcher or ("sandbox_init" in line and "/containers/compute/" in line):
            count += is_launcher
            rss += _proc_field(pid, "status", "VmRSS:")
            pss += _proc_field(pid, "smaps_rollup", "Pss:")
            cpu += _cpu_seconds(pid)
    return count, rss, pss, cpu


# --- the cluster ----------------------------------------------------------------------

class Cluster:
    def __init__(self, state_dir: Path, nodes: int) -> None:
        self.state_dir = state_dir
        self.nodes = nodes
        self.api: client.ApiClient | None = None

    def virtctl(self, *args: str, timeout: float = 300) -> None:
        subprocess.run([sys.executable, "-m", "virtctl", "local", *args, "--state-dir", str(self.state_dir)],
                       cwd=REPO, check=True, timeout=timeout, stdout=subprocess.DEVNULL)

    def up(self) -> None:
        self.virtctl("up", "--nodes", str(self.nodes))
        self.api = load_api_client(self.state_dir / "kubeconfig")
        if not wait_until(lambda: not missing_components(self.api, self.nodes), 180, 0.5):
            raise RuntimeError(f"kubevirt-py not ready: {missing_components(self.api, self.nodes)}")

    def supervisor_pid(self) -> int:
        try:
            return int((self.state_dir / "supervisor.pid").read_text())
        except (OSError, ValueError):
            return 0

    def down(self) -> None:
        pid = self.supervisor_pid()
        try:
            self.virtctl("down", timeout=200)
        except (subprocess.SubprocessError, OSError) as error:
            log(f"local down failed: {error}")
        if pid and Path(f"/proc/{pid}").exists() and "local_cluster.supervisor" in cmdline(pid):
            for child in descendants(pid):
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def launcher_pods(self, selector: str = LAUNCHER_SELECTOR) -> list[Obj]:
        pods = self.core.list_namespaced_pod(NAMESPACE, label_selector=selector, _request_timeout=60).items
        return [self.api.sanitize_for_serialization(pod) for pod in pods]

    def vmis(self) -> list[Obj]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL,
                                                         _request_timeout=60)["items"]

    def create_vmi(self, vmi: Obj) -> Obj:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, vmi,
                                                           _request_timeout=60)

    def delete_vmi(self, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name, _request_timeout=60)
        except client.ApiException as error:
            if error.status != 404:
                raise


class Tracker(threading.Thread):
    """Watches the VMIs: the first moment each is seen Running, and its last phase."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.lock = threading.Lock()
        self.running_at: dict[str, float] = {}
        self.scheduled_at: dict[str, float] = {}  # first seen Scheduled (or later): the launcher pod runs
        self.phase: dict[str, str] = {}
        self.uid: dict[str, str] = {}
        self.watch_errors = 0
        self.relists = 0
        self._stop_event = threading.Event()

    def _see(self, obj: Obj, kind: str = "ADDED") -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        with self.lock:
            if kind == "DELETED":
                self.phase[name] = "Deleted"
                return
            phase = (obj.get("status") or {}).get("phase") or "(none)"
            self.phase[name] = phase
            self.uid[name] = obj["metadata"]["uid"]
            if phase in ("Scheduled", "Running") and name not in self.scheduled_at:
                self.scheduled_at[name] = now
            if phase == "Running" and name not in self.running_at:
                self.running_at[name] = now

    def run(self) -> None:
        custom = self.cluster.custom
        while not self._stop_event.is_set():
            try:
                listing = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, _request_timeout=60)
                self.relists += 1
                with self.lock:
                    listed = {item["metadata"]["name"] for item in listing["items"]}
                    for name in self.phase:
                        if name not in listed:
                            self.phase[name] = "Deleted"
                for item in listing["items"]:
                    self._see(item)
                stream = watch.Watch()
                for event in stream.stream(custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL,
                                           resource_version=listing["metadata"]["resourceVersion"],
                                           timeout_seconds=5, _request_timeout=30):
                    if event["type"] == "ERROR":
                        break
                    self._see(event["object"], event["type"])
                    if self._stop_event.is_set():
                        stream.stop()
                        break
            except Exception as error:  # noqa: BLE001 - keep watching; counted and reported
                if self._stop_event.is_set():
                    return
                self.watch_errors += 1
                log(f"VMI watch: {type(error).__name__}: {str(error)[:200]}")
                time.sleep(0.5)

    def stop(self) -> None:
        self._stop_event.set()

    def running(self, names: list[str]) -> int:
        with self.lock:
            return sum(1 for name in names if name in self.running_at)

    def settled(self, names: list[str]) -> int:
        """How many were seen Running, or are Failed or Succeeded."""
        with self.lock:
            return sum(1 for name in names
                       if name in self.running_at or self.phase.get(name) in ("Failed", "Succeeded"))

    def phases(self, names: list[str]) -> collections.Counter:
        with self.lock:
            return collections.Counter(self.phase.get(name, "(unseen)") for name in names)


# --- VMIs -----------------------------------------------------------------------------

def demo_vmi(name: str) -> Obj:
    demo = yaml.safe_load((REPO / "deploy" / "examples" / "vm-demo.yaml").read_text())
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "labels": {"bench": "vmi-density"}},
            "spec": copy.deepcopy(demo["spec"]["template"]["spec"])}


def density_vmi(name: str) -> Obj:
    vmi = demo_vmi(name)
    vmi["metadata"]["annotations"] = {HYPERVISOR_ANNOTATION: "test"}
    vmi["spec"]["domain"]["resources"] = {"requests": {"memory": "32Mi", "cpu": "10m"}}
    return vmi


def failures(cluster: Cluster, pods: list[Obj], names: list[str]) -> list[str]:
    """Why each VMI that never ran did not: its phase and reason, its pod's container state."""
    by_vmi = {(pod["metadata"].get("annotations") or {}).get(labels.DOMAIN_ANNOTATION): pod for pod in pods}
    found = []
    for name in names[:10]:
        try:
            vmi = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name,
                                                              _request_timeout=30)
        except Exception as error:  # noqa: BLE001
            found.append(f"{name}: {error}")
            continue
        status = vmi.get("status") or {}
        pod = by_vmi.get(name) or {}
        states = [(c.get("state") or {}) for c in (pod.get("status") or {}).get("containerStatuses") or []]
        detail = "; ".join(f"{kind} {state.get('reason', '')} {(state.get('message') or '').strip()[-160:]}"
                           for entry in states for kind, state in entry.items())
        found.append(f"{name}: {status.get('phase')} {status.get('reason', '')} on "
                     f"{(pod.get('spec') or {}).get('nodeName')}, pod {(pod.get('status') or {}).get('phase')}"
                     f" [{detail}]")
    return found


def pod_summary(pods: list[Obj]) -> collections.Counter:
    summary: collections.Counter = collections.Counter()
    for pod in pods:
        status = pod.get("status") or {}
        reasons = [(s.get("state") or {}).get("waiting", {}).get("reason")
                   for s in status.get("containerStatuses") or [] if (s.get("state") or {}).get("waiting")]
        deleting = " deleting" if pod["metadata"].get("deletionTimestamp") else ""
        summary[f"{status.get('phase', '?')}{deleting}{' ' + ','.join(reasons) if reasons else ''}"] += 1
    return summary


# --- log scan -------------------------------------------------------------------------

class LogScan:
    """Problem lines (WARNING, ERROR, CRITICAL, Traceback) of the cluster's logs, grouped by
    source kind and message with timestamps, numbers and ids stripped. Rescanning a file
    replaces its earlier count, so launcher logs can be scanned until their pods go."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.per_file: dict[Path, collections.Counter] = {}

    def scan(self, pattern: str) -> None:
        for path in self.state_dir.glob(pattern):
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            self.per_file[path] = _problems(path, lines)

    def total(self) -> collections.Counter:
        found: collections.Counter = collections.Counter()
        for counts in self.per_file.values():
            found.update(counts)
        return found


def _problems(path: Path, lines: list[str]) -> collections.Counter:
    kind = path.parent.name if path.parent.parent.name == "logs" else path.name
    found: collections.Counter = collections.Counter()
    for index, line in enumerate(lines):
        if line.startswith("{"):  # etcd's JSON lines
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("warn", "error", "fatal", "panic"):
                found[(kind, f"{entry['level']}: {entry.get('msg', '')}")] += 1
            continue
        if not _LOG_PROBLEM.search(line):
            continue
        text = line
        if line.startswith("Traceback"):  # the exception line closes the traceback
            tail = next((lines[j] for j in range(index + 1, min(index + 80, len(lines)))
                         if lines[j] and not lines[j].startswith((" ", "\t", "Traceback"))), "")
            text = f"Traceback: {tail}"
        text = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", "", text)
        text = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<uid>", text)
        text = re.sub(r"density-\d+|tcg-\d+", "<vmi>", text)
        text = re.sub(r"\d+(\.\d+)?", "N", text)
        found[(kind, text[:240])] += 1
    return found


# --- phase 1: density -----------------------------------------------------------------

def density(cluster: Cluster, count: int, parallel: int, timeout: float, min_free_mib: float,
            logs: LogScan) -> Obj:
    result: Obj = {"requested": count}
    tracker = Tracker(cluster)
    tracker.start()
    names = [f"density-{index:03d}" for index in range(count)]
    created_at: dict[str, float] = {}
    create_latency: list[float] = []
    create_errors: collections.Counter = collections.Counter()
    free_before = mem_available_mib()
    cpu_before = cpu_by_process(cluster.supervisor_pid())

    def create(name: str) -> None:
        start = time.monotonic()
        try:
            cluster.create_vmi(density_vmi(name))
        except Exception as error:  # noqa: BLE001 - counted and reported
            create_errors[f"{type(error).__name__} {getattr(error, 'status', '')}".strip()] += 1
            return
        created_at[name] = start
        create_latency.append(time.monotonic() - start)

    log(f"density: creating {count} VMIs on the test driver ({parallel} at a time)")
    began = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            list(pool.map(create, names))
        result["create_seconds"] = time.monotonic() - began
        created = [name for name in names if name in created_at]
        result.update(created=len(created), create_errors=dict(create_errors),
                      create_p50=statistics.median(create_latency) if create_latency else 0.0)
        log(f"density: {len(created)} created in {result['create_seconds']:.1f}s; waiting for Running")
        deadline, last_report, min_free = time.monotonic() + timeout, 0.0, free_before
        result["outcome"] = "all Running"
        while tracker.settled(created) < len(created):
            now = time.monotonic()
            min_free = min(min_free, mem_available_mib())
            if now > deadline:
                result["outcome"] = f"timeout after {timeout:.0f}s"
                break
            if min_free < min_free_mib:
                result["outcome"] = f"stopped: MemAvailable {min_free:.0f} MiB < {min_free_mib:.0f} MiB"
                break
            if now - last_report > 15:
                last_report = now
                log(f"density: {tracker.running(created)}/{len(created)} Running after {now - began:.0f}s, "
                    f"MemAvailable {min_free:.0f} MiB, load {os.getloadavg()[0]:.1f}")
            time.sleep(0.2)
        finished = time.monotonic()
        result["cpu_by_component"] = cpu_delta(cpu_before, cpu_by_process(cluster.supervisor_pid()))
        if tracker.running(created) < tracker.settled(created) == len(created):
            result["outcome"] = "every VMI Running or Failed"
        with tracker.lock:
            latencies = [tracker.running_at[n] - created_at[n] for n in created if n in tracker.running_at]
            last_running = max((tracker.running_at[n] for n in created if n in tracker.running_at), default=began)
            to_scheduled = [tracker.scheduled_at[n] - created_at[n] for n in created if n in tracker.scheduled_at]
            result["to_scheduled"] = to_scheduled
        result.update(running=len(latencies), wall=last_running - began, waited=finished - began,
                      latencies=latencies, phases=dict(tracker.phases(created)))
        time.sleep(2)  # let the launchers settle before sampling memory and idle CPU
        idle_before = cpu_by_process(cluster.supervisor_pid())
        time.sleep(IDLE_SAMPLE_SECONDS)
        idle = cpu_delta(idle_before, cpu_by_process(cluster.supervisor_pid()))
        result["idle_cpu"] = {k: v / IDLE_SAMPLE_SECONDS for k, v in idle.items()}
        launchers, rss, pss, cpu = launcher_usage(cluster.supervisor_pid())
        result.update(launchers=launchers, launcher_rss=rss, launcher_pss=pss, launcher_cpu=cpu,
                      free_drop=free_before - mem_available_mib(), min_free=min_free)
        pods = cluster.launcher_pods()
        result["pods"] = dict(pod_summary(pods))
        result["failures"] = failures(cluster, pods, [n for n in created if n not in tracker.running_at])
        result["pods_per_node"] = dict(collections.Counter((p.get("spec") or {}).get("nodeName") or "(none)"
                                                            for p in pods))
        logs.scan(LAUNCHER_LOGS)
        log(f"density: {len(latencies)}/{len(created)} Running ({result['outcome']}); deleting")
    finally:
        # Delete whatever was created, even after a failure, and wait for the pods to go.
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda name: _quiet(cluster.delete_vmi, name), names))
        result["delete_calls"] = time.monotonic() - start
        vmis_gone = pods_gone = None
        deadline, last_scan = time.monotonic() + timeout, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - last_scan > 2:  # launcher logs go with their pods
                logs.scan(LAUNCHER_LOGS)
                last_scan = time.monotonic()
            try:
                vmi_count = len([v for v in cluster.vmis() if v["metadata"]["name"].startswith("density-")])
                pod_count = len(cluster.launcher_pods())
            except Exception as error:  # noqa: BLE001
                log(f"density: listing during delete: {error}")
                time.sleep(1)
                continue
            now = time.monotonic()
            if vmi_count == 0 and vmis_gone is None:
                vmis_gone = now - start
            if pod_count == 0 and pods_gone is None:
                pods_gone = now - start
            if vmis_gone is not None and pods_gone is not None:
                break
            time.sleep(0.5)
        result.update(vmis_gone=vmis_gone, pods_gone=pods_gone)
        if pods_gone is None:
            try:
                result["pods_left"] = dict(pod_summary(cluster.launcher_pods()))
            except Exception:  # noqa: BLE001
                pass
        tracker.stop()
        result.update(watch_errors=tracker.watch_errors, relists=tracker.relists)
        log(f"density: VMIs gone after {vmis_gone}s, launcher pods gone after {pods_gone}s")
    return result


def _quiet(function, *args) -> None:
    try:
        function(*args)
    except Exception as error:  # noqa: BLE001
        log(f"{function.__name__}{args}: {error}")


# --- phase 2: real guests against direct libvirt --------------------------------------

def _booted(path: Path) -> bool:
    try:
        return markers.BOOTED.encode() in path.read_bytes()
    except OSError:
        return False


def _snapshot_domain(work: Path, uid: str, target: Path) -> str:
    """The launcher's domain XML, pointed at copies of its disks in target: a fresh
    overlay of the same backing image for every qcow2 overlay, a copy of anything else."""
    xml = (work / "domain.xml").read_text()
    (target / "disks").mkdir(parents=True)
    for disk in sorted((work / "disks").iterdir()):
        info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)], check=True,
                                         capture_output=True, text=True, timeout=60).stdout)
        backing = info.get("full-backing-filename") or info.get("backing-filename")
        if info.get("format") == "qcow2" and backing:
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing,
                            "-F", info.get("backing-filename-format", "raw"), str(target / "disks" / disk.name)],
                           check=True, timeout=60)
        else:
            shutil.copy2(disk, target / "disks" / disk.name)
    # The launcher's per-VMI socket directory (serial console) moves into target as well.
    (target / "sockets").mkdir()
    xml = re.sub(rf"(/var)?/run/kubevirt/sockets/{re.escape(uid)}", str(target / "sockets"), xml)
    return re.sub(rf"(/var)?/run/kubevirt-private/{re.escape(uid)}", str(target), xml)


def _direct_start(xml: str, target: Path, timeout: float) -> tuple[float, float | None]:
    """createXML of the domain on a private libvirtd: (s to running, s to BOOTED)."""
    daemon = Libvirtd(target / "libvirtd")
    daemon.start()
    try:
        connection = libvirt.open(daemon.uri)
        try:
            start = time.monotonic()
            domain = connection.createXML(xml, 0)
            wait_until(lambda: domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING, 30, 0.01)
            running = time.monotonic() - start
            booted = (time.monotonic() - start) if wait_until(lambda: _booted(target / "serial0.log"),
                                                              timeout, 0.02) else None
            domain.destroy()
        finally:
            connection.close()
    finally:
        daemon.stop()
    return running, booted


def tcg(cluster: Cluster, count: int, scratch: Path, timeout: float, logs: LogScan) -> list[Obj]:
    runs: list[Obj] = []
    tracker = Tracker(cluster)
    tracker.start()
    try:
        for index in range(count):
            name = f"tcg-{index}"
            run: Obj = {"name": name}
            runs.append(run)
            target = scratch / f"direct{index}"
            xml = None
            start = time.monotonic()
            cluster.create_vmi(demo_vmi(name))
            try:
                if not wait_until(lambda: tracker.running([name]) == 1, timeout):
                    run["error"] = f"not Running after {timeout:.0f}s: {dict(tracker.phases([name]))}"
                    continue
                run["running"] = tracker.running_at[name] - start
                uid = tracker.uid[name]
                pods = cluster.launcher_pods(f"{labels.CREATED_BY_LABEL}={uid}")
                serial = serial_log_path(cluster.state_dir, pods[0], uid)
                if wait_until(lambda: _booted(serial), timeout, 0.02):
                    run["booted"] = time.monotonic() - start
                else:
                    run["error"] = f"no {markers.BOOTED!r} on the serial console after {timeout:.0f}s"
                xml = _snapshot_domain(serial.parent, uid, target)
                run["emulation"] = "TCG" if 'type="qemu"' in xml.split(">", 1)[0] else "KVM"
            finally:
                logs.scan(LAUNCHER_LOGS)
                _quiet(cluster.delete_vmi, name)

                def gone() -> bool:
                    logs.scan(LAUNCHER_LOGS)
                    return not cluster.launcher_pods() and tracker.phases([name])["Deleted"] == 1

                if not wait_until(gone, 120, 0.5):
                    run["error"] = run.get("error", "") + " (its pod was not gone within 120s)"
            log(f"tcg {name}: create -> Running {run.get('running', 0):.2f}s, -> BOOTED {run.get('booted', 0):.2f}s")
            if xml is not None:
                run["direct_running"], run["direct_booted"] = _direct_start(xml, target, timeout)
                log(f"tcg {name}: direct createXML -> running {run['direct_running']:.2f}s, "
                    f"-> BOOTED {run['direct_booted'] or 0:.2f}s")
            shutil.rmtree(target, ignore_errors=True)
    finally:
        tracker.stop()
    return runs


# --- report ---------------------------------------------------------------------------

def report(nodes: int, dense: Obj | None, runs: list[Obj], problems: collections.Counter) -> None:
    rows: list[tuple[str, str]] = []
    if dense:
        lat = dense.get("latencies") or []
        rows += [
            (f"density: VMIs Running / created / requested ({nodes} nodes)",
             f"{dense.get('running', 0)}/{dense.get('created', 0)}/{dense['requested']}"),
            ("density: outcome", dense.get("outcome", "failed")),
            ("density: create calls, wall (s)", f"{dense.get('create_seconds', 0):.1f}"),
            ("density: create call latency p50 (ms)", f"{dense.get('create_p50', 0) * 1000:.0f}"),
            ("density: first create -> all Running (s)", f"{dense.get('wall', 0):.1f}"),
        ]
        if lat:
            rows += [
                ("density: VMIs Running per second", f"{len(lat) / max(dense['wall'], 1e-9):.2f}"),
                ("density: create -> Running min, first VMI (s)", f"{min(lat):.1f}"),
                ("density: create -> Running p50 (s)", f"{percentile(lat, 0.50):.1f}"),
                ("density: create -> Running p95 (s)", f"{percentile(lat, 0.95):.1f}"),
                ("density: create -> Running max (s)", f"{max(lat):.1f}"),
            ]
        if dense.get("to_scheduled"):
            rows.append(("density: create -> Scheduled (launcher pod running) p50 (s)",
                         f"{percentile(dense['to_scheduled'], 0.5):.1f}"))
        if dense.get("cpu_by_component"):
            rows.append(("density: CPU s used until all Running, by process",
                         ", ".join(f"{k} {v:.0f}" for k, v in sorted(dense["cpu_by_component"].items(),
                                                                      key=lambda item: -item[1]))))
        if dense.get("idle_cpu"):
            rows.append((f"density: idle CPU with all Running (cores, {IDLE_SAMPLE_SECONDS}s)",
                         f"{sum(dense['idle_cpu'].values()):.2f}: " + ", ".join(
                             f"{k} {v:.2f}" for k, v in sorted(dense["idle_cpu"].items(), key=lambda i: -i[1])
                             if v >= 0.005)))
        if dense.get("launchers"):
            rows += [
                ("density: launchers counted / RSS sum (MiB)",
                 f"{dense['launchers']} / {dense['launcher_rss']:.0f}"),
                ("density: PSS per launcher incl. sandbox_init (MiB)",
                 f"{dense['launcher_pss'] / dense['launchers']:.1f}"),
                ("density: CPU per launcher start, incl. sandbox_init (s)",
                 f"{dense['launcher_cpu'] / dense['launchers']:.2f}"),
            ]
        if "free_drop" in dense:
            rows += [("density: MemAvailable drop at all Running (MiB)", f"{dense['free_drop']:.0f}")]
        rows += [
            ("density: delete -> all VMIs gone (s)", _maybe(dense.get("vmis_gone"))),
            ("density: delete -> all launcher pods gone (s)", _maybe(dense.get("pods_gone"))),
        ]
        if dense.get("create_errors"):
            rows.append(("density: create errors", str(dense["create_errors"])))
        if dense.get("phases") and set(dense["phases"]) != {"Running"}:
            rows.append(("density: VMI phases at the end", str(dense["phases"])))
        if dense.get("pods") and set(dense["pods"]) != {"Running"}:
            rows.append(("density: launcher pods at the end", str(dense["pods"])))
        for line in dense.get("failures") or []:
            rows.append(("density: not Running", line))
        if dense.get("pods_per_node"):
            rows.append(("density: launcher pods per node", str(dict(sorted(dense["pods_per_node"].items())))))
        if dense.get("pods_left"):
            rows.append(("density: launcher pods left after delete", str(dense["pods_left"])))
        if dense.get("watch_errors"):
            rows.append(("density: VMI watch errors / relists", f"{dense['watch_errors']} / {dense['relists']}"))
    good = [r for r in runs if "running" in r and "direct_running" in r]
    for run in runs:
        if "error" in run:
            rows.append((f"tcg {run['name']}: error", run["error"].strip()))
    if good:
        product_running = statistics.median(r["running"] for r in good)
        direct_running = statistics.median(r["direct_running"] for r in good)
        rows += [
            (f"tcg ({good[0].get('emulation')}, {len(good)} runs): create -> Running (s, median)",
             f"{product_running:.2f}"),
            ("tcg: direct createXML -> running, same XML (s, median)", f"{direct_running:.2f}"),
            ("tcg: ratio product / direct, to running", f"{product_running / direct_running:.1f}x"),
        ]
        booted = [r for r in good if r.get("booted") and r.get("direct_booted")]
        if booted:
            product_booted = statistics.median(r["booted"] for r in booted)
            direct_booted = statistics.median(r["direct_booted"] for r in booted)
            rows += [
                ("tcg: create -> BOOTED serial line (s, median)", f"{product_booted:.2f}"),
                ("tcg: direct createXML -> BOOTED (s, median)", f"{direct_booted:.2f}"),
                ("tcg: ratio product / direct, to BOOTED", f"{product_booted / direct_booted:.2f}x"),
            ]
    width = max(len(label) for label, _ in rows) + 2 if rows else 40
    print(f"{'figure':<{width}}value")
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    if problems:
        print(f"\nproblem lines in the cluster's logs ({sum(problems.values())}), by source:")
        for (kind, text), count in problems.most_common(15):
            print(f"  {count:>5}  {kind:<16} {text}")


def _maybe(value: float | None) -> str:
    return "not within the timeout" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vmis", type=int, default=200, help="test-driver VMIs for the density phase (0: skip)")
    parser.add_argument("--tcg", type=int, default=3, help="real TCG guests, one at a time (0: skip)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=8, help="concurrent create calls")
    parser.add_argument("--timeout", type=float, default=900, help="bound of every wait, seconds")
    parser.add_argument("--min-free-mib", type=float, default=1536,
                        help="stop waiting for Running when MemAvailable falls below this")
    parser.add_argument("--keep-state", action="store_true", help="keep the cluster's state dir (logs) after down")
    args = parser.parse_args()

    def interrupted(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    scratch = Path(tempfile.mkdtemp(prefix="kv-bench-d-", dir="/tmp"))
    cluster = Cluster(scratch / "cluster", args.nodes)
    dense: Obj | None = None
    runs: list[Obj] = []
    logs = LogScan(cluster.state_dir)
    try:
        log(f"starting a local cluster with {args.nodes} nodes in {cluster.state_dir}")
        cluster.up()
        if args.vmis > 0:
            dense = density(cluster, args.vmis, args.parallel, args.timeout, args.min_free_mib, logs)
        if args.tcg > 0:
            runs = tcg(cluster, args.tcg, scratch, min(args.timeout, 300), logs)
        for pattern in ("supervisor.log", "etcd/etcd.log", "nodes/*/kubelet.log", "nodes/*/pods/*/logs/virt-*/*.log"):
            logs.scan(pattern)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("stopping the local cluster")
        cluster.down()
        if args.keep_state:
            log(f"state kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report(args.nodes, dense, runs, logs.total())


if __name__ == "__main__":
    main()
