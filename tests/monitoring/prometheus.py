"""deploy/monitoring/ as the tests see it, and Debian's real Prometheus run on a free
loopback port for the time of a test."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

Obj = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "kubevirt-rules.yaml"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
SCRAPE_CONFIG = MONITORING / "prometheus-kubevirt.yaml"
SERVICE_MONITOR = MONITORING / "servicemonitor.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RUNBOOKS = REPO / "docs" / "runbooks"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"


def rules() -> list[Obj]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[Obj]:
    return [rule for rule in rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


# --- the dashboard -------------------------------------------------------------------------

def dashboard() -> Obj:
    return json.loads(DASHBOARD.read_text())


def panels(board: Obj) -> Iterator[Obj]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def dashboard_exprs(board: Obj) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [(panel["title"], target["expr"]) for panel in panels(board) for target in panel.get("targets", [])]


# Grafana fills these in before a query reaches Prometheus. Every variable of ours stands
# in a regex matcher, where ".*" is what "All" sends.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}


def as_sent_by_grafana(expr: str) -> str:
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?[A-Za-z_]\w*\}?", ".*", expr)


# --- metric names --------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"(?<![\w\"'.{$])([a-zA-Z_:][\w:]*)\s*(?=[{\[)\s,]|$)")
_PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "topk", "bottomk", "by", "without", "on", "ignoring",
                 "group_left", "group_right", "and", "or", "unless", "rate", "increase", "irate", "time", "vector",
                 "histogram_quantile", "max_over_time", "min_over_time", "label_replace", "round", "offset", "bool",
                 "le", "abs", "absent", "clamp_min", "clamp_max", "scalar", "delta", "deriv", "quantile"}
_SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (label names inside by (...) excluded)."""
    expr = re.sub(r"(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\"[^\"]*\"|'[^']*'", "''", expr)
    return {name for name in _IDENTIFIER.findall(expr) if name not in _PROMQL_WORDS}


def family(name: str) -> str:
    """A histogram's series (x_bucket, ...) belong to the family x."""
    if name in recorded_names():  # kubevirt_vmi_phase_count is a name of its own
        return name
    for suffix in _SERIES_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def referenced_families() -> dict[str, set[str]]:
    """Metric family -> where it is used, for every metric the rules and the dashboard read."""
    uses: dict[str, set[str]] = {}
    for rule in rules():
        for name in metric_names(rule["expr"]):
            uses.setdefault(family(name), set()).add(rule.get("alert") or rule.get("record"))
    for title, expr in dashboard_exprs(dashboard()):
        for name in metric_names(as_sent_by_grafana(expr)):
            uses.setdefault(family(name), set()).add(f"dashboard: {title}")
    return uses


def exported_by_us(name: str) -> bool:
    """A family our components export, as against Prometheus' own, kube-state-metrics' and
    the recording rules'."""
    return (name.startswith(("kubevirt_", "grpc_server_")) and name not in recorded_names())


# --- a Prometheus server -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Prometheus:
    """Debian's prometheus on 127.0.0.1:<free port> with ``config``, its storage in a
    temporary directory; stopped, and its directory removed, on exit."""

    def __init__(self, config: Obj, workdir: Path) -> None:
        self._config = config
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Prometheus:
        config_file = self._workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self._config, sort_keys=False))
        storage = Path(tempfile.mkdtemp(prefix="tsdb-", dir=self._workdir))
        self._log = (self._workdir / "prometheus.log").open("wb")
        # A port picked now could be taken before Prometheus binds it; try a few.
        for _ in range(3):
            self.port = free_port()
            self._process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config_file}", f"--storage.tsdb.path={storage}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
            if self._wait_ready(timeout=30):
                return self
            self._stop()
        raise AssertionError(f"prometheus did not become ready:\n{self.log()}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop()
        if self._log is not None:
            self._log.close()

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def log(self) -> str:
        try:
            return (self._workdir / "prometheus.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as error:  # 400/422: a query that does not parse or evaluate
            body = json.load(error)
        if body.get("status") != "success":
            raise AssertionError(f"/api/v1/{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[Obj]:
        return self.api("query", query=expr)["result"]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)

