"""The issue's benchmark table in one run: each figure next to its same-run baseline (where
the issue asks for one), the ratio, the target and whether it is met. Prints figures; asserts
nothing. Progress goes to stderr, the table to stdout.

rows (--rows, default all):
  start      VMI create -> Running p50/p95 of real TCG guests on the local cluster against a
             direct libvirt start of the same domain XML; and the launcher alone (spec ->
             running domain) against the same baseline
  density    N test-driver VMIs to Running on the local cluster (2 nodes)
  tunnel     MigrationTunnel (mutual TLS, two processes) against a raw unix-socket relay
  rss        launcher RSS without QEMU
  apiserver  API server creates/s against raw etcd creates/s; watch latency p50/p99
  notify     Notify stream events/s; domain event -> VMI status p99 on the local cluster: exact
             (the handlers' histogram, from the launcher's stamp on each event to the status
             write) and an upper bound seen from a client (pause PUT -> condition on a watch)
  upstream   upstream's density shape on the local cluster: N minimal VMIs 100 ms apart, then N
             minimal VMs; creation -> Running p50/p95 and our components' API calls per VMI
             by verb and resource (bench/upstream_density.py)

The local cluster (start, density, notify, upstream) is started once and always stopped; the API
server bench runs its own control plane only after that cluster is down.

    .venv/bin/python -m bench.run [--quick] [--rows start,density,...]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import apiserver, launcher, notify, tunnel, upstream_density, vmi_density
from bench.component_metrics import histogram_buckets, histogram_quantile
from bench.vmi_density import Cluster, LogScan, Tracker, density_vmi, log, percentile, wait_until
from virt_handler.event_latency import METRIC as EVENT_TO_STATUS

ROWS = ("start", "density", "tunnel", "rss", "apiserver", "notify", "upstream")
CLUSTER_ROWS = {"start", "density", "notify", "upstream"}
NODES = 2
DENSITY_TARGET_VMIS = 200  # the target (<= 30 s) is for this many


@dataclasses.dataclass(frozen=True)
class Sizes:
    density_vmis: int
    tcg_runs: int
    launcher_runs: int
    tunnel_mib: int
    tunnel_runs: int
    api_writes: int
    api_watchers: int
    api_events: int
    notify_events: int
    pause_toggles: int
    upstream_count: int


FULL = Sizes(200, 5, 3, 256, 3, 2000, 100, 50, 100_000, 100, 100)
QUICK = Sizes(40, 2, 1, 64, 1, 500, 20, 20, 20_000, 20, 20)


@dataclasses.dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    verdict: str = "-"


def _verdict(met: bool | None) -> str:
    return "-" if met is None else "pass" if met else "miss"


def _error_row(name: str, error: BaseException) -> Row:
    return Row(f"{name}: failed", f"{type(error).__name__}: {str(error)[:80]}", verdict="error")


# -- rows on the local cluster ---------------------------------------------------------------

def start_rows(runs: list[dict], launcher_figures: dict[str, list[float]] | None) -> list[Row]:
    rows = [Row(f"tcg {run['name']}: error", run["error"].strip()[:80], verdict="error")
            for run in runs if "error" in run]
    good = [run for run in runs if "running" in run and "direct_running" in run]
    if good:
        product = [run["running"] for run in good]
        direct = [run["direct_running"] for run in good]
        for label, share in (("p50", 0.5), ("p95", 0.95)):
            figure, baseline = percentile(product, share), percentile(direct, share)
            rows.append(Row(f"VMI create -> Running {label}, TCG guest, {len(good)} runs (s)", f"{figure:.2f}",
                            f"{baseline:.2f} direct createXML", f"{figure / baseline:.2f}x", "<= 1.5x",
                            _verdict(figure / baseline <= 1.5)))
    if launcher_figures:
        figure = statistics.median(launcher_figures["launched"])
        baseline = statistics.median(launcher_figures["direct"])
        rows.append(Row(f"launcher alone: spec -> running domain, median of {len(launcher_figures['launched'])} (s)",
                        f"{figure:.2f}", f"{baseline:.2f} direct createXML", f"{figure / baseline:.2f}x",
                        "<= 1.5x", _verdict(figure / baseline <= 1.5)))
    return rows


def density_rows(dense: dict) -> list[Row]:
    running, requested = dense.get("running", 0), dense["requested"]
    latencies = dense.get("latencies") or []
    full_size = requested == DENSITY_TARGET_VMIS
    met = full_size and running == requested and dense.get("wall", 0) <= 30
    rows = [Row(f"{requested} test-driver VMIs: first create -> all Running (s), {running} Running",
                f"{dense.get('wall', 0):.1f}", target="<= 30 s (200 VMIs)",
                verdict=_verdict(met if full_size or running < requested else None))]
    if latencies:
        rows.append(Row(f"{requested} test-driver VMIs: create -> Running p50 / p95 (s)",
                        f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.95):.1f}"))
    return rows


def status_rows(latencies: list[float], event_buckets: dict[float, float]) -> list[Row]:
    """The exact figure from the handlers' histogram (launcher's event stamp -> status
    written), then the client's upper bound (PUT -> condition seen on a watch)."""
    events = event_buckets.get(math.inf, 0.0)
    p99 = histogram_quantile(0.99, event_buckets)
    within = event_buckets.get(0.1, 0.0) / events if events else 0.0
    rows = [Row(f"domain event (launcher stamp) -> VMI status written p99, {events:.0f} events (ms)",
                f"{p99 * 1000:.0f}" if events else "none",
                f"p50 {histogram_quantile(0.5, event_buckets) * 1000:.0f}, {within:.1%} <= 100 ms" if events else "-",
                "-", "<= 100 ms", _verdict(events > 0 and p99 <= 0.1))]
    p99_put = percentile(latencies, 0.99)
    rows.append(Row(f"pause/unpause PUT -> Paused condition on a watch p99, {len(latencies)} toggles (ms)",
                    f"{p99_put * 1000:.0f}", f"p50 {percentile(latencies, 0.5) * 1000:.0f}", "-",
                    "(upper bound of the above)"))
    return rows


def upstream_rows(result: dict) -> list[Row]:
    count, latencies, calls = result["count"], result["latencies"], result["calls_per_vmi"]
    label = f"upstream density: {count} {result['kind'].upper()}s 100 ms apart"
    rows = [Row(f"{label}, creation -> Running p50 / p95 (s), {len(latencies)} Running",
                f"{percentile(latencies, 0.5):.2f} / {percentile(latencies, 0.95):.2f}" if latencies else "none")]
    rows.append(Row(f"{label}, API calls per VMI, all (incl. leases, heartbeats)", f"{sum(calls.values()):.1f}"))
    for (verb, resource), per_vmi in sorted(calls.items(), key=lambda item: -item[1]):
        if per_vmi >= 0.05:  # rarer ones are background work, not the VMIs' own
            rows.append(Row(f"  {verb} {resource}", f"{per_vmi:.2f}"))
    return rows


def _pause_target(cluster: Cluster, timeout: float) -> str:
    """A running test-driver VMI to pause and unpause."""
    name = "notify-latency"
    tracker = Tracker(cluster)
    tracker.start()
    try:
        cluster.create_vmi(density_vmi(name))
        if not wait_until(lambda: tracker.running([name]) == 1, timeout, 0.1):
            raise RuntimeError(f"VMI {name} not Running within {timeout:.0f}s: {dict(tracker.phases([name]))}")
    finally:
        tracker.stop()
    return name


def cluster_rows(selected: set[str], sizes: Sizes, scratch: Path, launcher_figures: dict | None) -> list[Row]:
    cluster = Cluster(scratch / "cluster", NODES)
    logs = LogScan(cluster.state_dir)
    rows: list[Row] = []
    try:
        log(f"starting a local cluster with {NODES} nodes")
        try:
            cluster.up()
        except Exception as error:  # noqa: BLE001 - reported in the table; the other rows still run
            return [_error_row("local cluster", error)]
        # First, on the idle cluster: a single VMI's latency, not that of the cleanup after
        # the density rows' hundreds of deletions.
        if "start" in selected:
            rows += _guarded("start", lambda: start_rows(
                vmi_density.tcg(cluster, sizes.tcg_runs, scratch, 300, logs), launcher_figures))
        if "density" in selected:
            rows += _guarded("density", lambda: density_rows(
                vmi_density.density(cluster, sizes.density_vmis, 8, 600, 1536, logs)))
        if "notify" in selected:
            def status() -> list[Row]:
                name = _pause_target(cluster, 120)
                try:
                    log(f"notify: {sizes.pause_toggles} pause/unpause toggles of {name}")
                    before = histogram_buckets(cluster, EVENT_TO_STATUS)
                    latencies = notify.status_latencies(cluster.api, vmi_density.NAMESPACE, name, sizes.pause_toggles)
                    after = histogram_buckets(cluster, EVENT_TO_STATUS)
                    return status_rows(latencies, {le: after[le] - before.get(le, 0.0) for le in after})
                finally:
                    cluster.delete_vmi(name)
            rows += _guarded("event -> status", status)
        if "upstream" in selected:
            for kind in ("vmi", "vm"):
                rows += _guarded(f"upstream density ({kind}s)", lambda kind=kind: upstream_rows(
                    upstream_density.phase(cluster, kind, sizes.upstream_count, 600)))
    finally:
        # A second Ctrl-C must not leave the cluster's processes behind.
        handlers = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("stopping the local cluster")
        cluster.down()
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    return rows


# -- rows without the cluster ----------------------------------------------------------------

def tunnel_rows(sizes: Sizes) -> list[Row]:
    from virt_handler.migration_tunnel import CHUNK

    figures = asyncio.run(tunnel.measure(sizes.tunnel_mib, CHUNK, True, sizes.tunnel_runs))
    total = sizes.tunnel_mib * tunnel.MIB
    best = {name: tunnel._rate(total, min(seconds for seconds, _ in runs)) for name, runs in figures.items()}
    ratio = best["tunnel"] / best["raw"]
    return [Row(f"MigrationTunnel, mutual TLS, {sizes.tunnel_mib} MiB, best of {sizes.tunnel_runs} (MB/s)",
                f"{best['tunnel']:.0f}", f"{best['raw']:.0f} raw relay", f"{ratio:.2f}x", ">= 0.9x",
                _verdict(ratio >= 0.9))]


def rss_rows(figures: dict[str, list[float]]) -> list[Row]:
    rss = statistics.median(figures["rss"])
    return [Row(f"launcher RSS without QEMU, median of {len(figures['rss'])} (MiB)", f"{rss:.1f}",
                f"{statistics.median(figures['libvirtd_rss']):.1f} its libvirtd", "-", "<= 60 MiB",
                _verdict(rss <= 60))]


def apiserver_rows(sizes: Sizes) -> list[Row]:
    etcd_rate, api_rate, latencies = apiserver.measure(sizes.api_writes, sizes.api_watchers, sizes.api_events)
    return [Row(f"API server creates/s, HTTPS, {sizes.api_writes} writes", f"{api_rate:.0f}",
                f"{etcd_rate:.0f} raw etcd", f"{api_rate / etcd_rate:.2f}x"),
            Row(f"watch latency p50 / p99, {sizes.api_watchers} watchers (ms)",
                f"{percentile(latencies, 0.5) * 1000:.0f} / {percentile(latencies, 0.99) * 1000:.0f}")]


def notify_stream_rows(sizes: Sizes) -> list[Row]:
    rate = notify.stream_rate(sizes.notify_events)
    return [Row(f"Notify stream, one launcher, {sizes.notify_events} events (events/s)", f"{rate:.0f}",
                target=">= 20000", verdict=_verdict(rate >= 20_000))]


def _guarded(name: str, rows: Callable[[], list[Row]]) -> list[Row]:
    """One row's failure is reported in the table; the other rows still run."""
    try:
        return rows()
    except KeyboardInterrupt:
        raise
    except Exception as error:  # noqa: BLE001 - reported as the row's figure
        log(f"{name}: {type(error).__name__}: {error}")
        return [_error_row(name, error)]


# -- table -----------------------------------------------------------------------------------

def print_table(rows: list[Row]) -> None:
    """A Markdown table, so a run can be pasted into the README as it is."""
    cells = [dataclasses.astuple(row) for row in [Row("figure", "value", "baseline (same run)", "ratio", "target",
                                                      "met"), *rows]]
    widths = [max(len(line[column]) for line in cells) for column in range(len(cells[0]))]
    for index, line in enumerate(cells):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


def run(selected: set[str], sizes: Sizes) -> list[Row]:
    rows: list[Row] = []
    scratch = Path(tempfile.mkdtemp(prefix="kv-bench-run-", dir="/tmp"))
    try:
        launcher_figures = None
        if selected & {"rss", "start"}:
            log(f"launcher: {sizes.launcher_runs} runs")
            try:
                launcher_figures = launcher.measure(sizes.launcher_runs)
            except Exception as error:  # noqa: BLE001 - reported in the table
                rows.append(_error_row("launcher", error))
        if "rss" in selected and launcher_figures:
            rows += rss_rows(launcher_figures)
        if "notify" in selected:
            log(f"notify: stream of {sizes.notify_events} events")
            rows += _guarded("notify stream", lambda: notify_stream_rows(sizes))
        if "tunnel" in selected:
            log(f"tunnel: {sizes.tunnel_mib} MiB x {sizes.tunnel_runs}")
            rows += _guarded("tunnel", lambda: tunnel_rows(sizes))
        if selected & CLUSTER_ROWS:
            rows += cluster_rows(selected, sizes, scratch, launcher_figures if "start" in selected else None)
        if "apiserver" in selected:  # its own control plane: only once the local cluster is down
            log(f"apiserver: {sizes.api_writes} writes, {sizes.api_watchers} watchers")
            rows += _guarded("apiserver", lambda: apiserver_rows(sizes))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def _rows(text: str) -> set[str]:
    chosen = {name.strip() for name in text.split(",") if name.strip()}
    unknown = chosen - set(ROWS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {sorted(unknown)}; choose from {', '.join(ROWS)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: the whole run in a few minutes")
    parser.add_argument("--rows", type=_rows, default=set(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    args = parser.parse_args()

    def interrupted(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    sizes = QUICK if args.quick else FULL
    began = time.monotonic()
    rows = run(args.rows, sizes)
    print(f"bench.run{' --quick' if args.quick else ''}: {os.cpu_count()} CPUs, "
          f"{time.monotonic() - began:.0f} s, {time.strftime('%Y-%m-%d')}", file=sys.stderr)
    print_table(rows)


if __name__ == "__main__":
    main()
