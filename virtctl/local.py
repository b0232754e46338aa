"""`virtctl local up|down|status`: the local cluster on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from local_cluster.state_dir import DEFAULT_STATE_DIR

UP_TIMEOUT = 180.0
DOWN_TIMEOUT = 120.0


def _pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "supervisor.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    if _is_zombie(pid):  # killed, and not yet reaped by its new parent
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@click.group("local")
def local() -> None:
    """Run a local cluster on this machine (embedded control plane, process kubelets)."""


@local.command()
@click.option("--nodes", type=click.IntRange(min=1, max=16), default=2, show_default=True, help="Simulated nodes.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
def up(nodes: int, state_dir: Path) -> None:
    """Start the local cluster and wait until every node is Ready."""
    if _pid(state_dir) is not None:
        click.echo(f"The local cluster is already running (state in {state_dir}).")
        _print_usage(state_dir)
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    # Left by a supervisor that was killed: it would make this one look ready at once.
    (state_dir / "ready").unlink(missing_ok=True)
    log_path = state_dir / "supervisor.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "local_cluster.supervisor", "--state-dir", str(state_dir),
                                    "--nodes", str(nodes)], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    click.echo(f"Starting the local cluster with {nodes} node(s)", nl=False)
    deadline = time.monotonic() + UP_TIMEOUT
    while not (state_dir / "ready").exists():
        if process.poll() is not None:
            click.echo("")
            raise click.ClickException(f"the local cluster failed to start (exit {process.returncode}); "
                                       f"last lines of {log_path}:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            process.terminate()
            raise click.ClickException(f"the local cluster was not ready within {UP_TIMEOUT:.0f}s; "
                                       f"see {log_path}:\n{_log_tail(log_path)}")
        click.echo(".", nl=False)
        time.sleep(0.5)
    click.echo(" ready.")
    _print_usage(state_dir)


def _print_usage(state_dir: Path) -> None:
    kubeconfig = state_dir / "kubeconfig"
    click.echo(f"\n  export KUBECONFIG={kubeconfig}\n  kubectl get nodes\n  virtctl local status\n"
               f"  virtctl local down\n")


@local.command()
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
def down(state_dir: Path) -> None:
    """Stop the local cluster (its state stays for the next `up`)."""
    pid = _pid(state_dir)
    if pid is None:
        click.echo("The local cluster is not running.")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while _pid(state_dir) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid(state_dir) is not None:
        os.kill(pid, signal.SIGKILL)
        raise click.ClickException(f"the local cluster did not stop within {DOWN_TIMEOUT:.0f}s and was killed")
    click.echo("The local cluster is stopped.")


@local.command()
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
def status(state_dir: Path) -> None:
    """Show whether the local cluster runs, and its nodes."""
    from kubernetes import client

    from kube_client.config import load_api_client

    if _pid(state_dir) is None:
        click.echo("The local cluster is not running.")
        sys.exit(3)
    if not (state_dir / "ready").exists():
        click.echo("The local cluster is starting.")
        return
    api = load_api_client(state_dir / "kubeconfig")
    core = client.CoreV1Api(api)
    click.echo(f"The local cluster is running: {api.configuration.host}")
    for node in core.list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        click.echo(f"  {node.metadata.name:<10} {'Ready' if ready else 'NotReady'}")
    pods = core.list_pod_for_all_namespaces().items
    click.echo(f"  {len(pods)} pod(s)")
