"""`virtctl start|stop|restart|migrate VM`: PUT the VM's subresource with its options body
(upstream StartOptions, StopOptions, RestartOptions, MigrateOptions)."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from kubevirt_api.groups import VIRTUAL_MACHINE
from virtctl.clientconfig import cluster_options, connect
from virtctl.dryrun import dry_run_field, dry_run_option
from virtctl.errors import ApiError, CommandError
from virtctl.subresources import request, subresource_path

NO_GRACE_PERIOD = -1


def schedule(verb: str, gerund: str, name: str, body: dict[str, Any], *, forced: bool = False) -> None:
    """PUT .../virtualmachines/NAME/VERB and say so the way upstream does."""
    cluster = connect()
    try:
        request(cluster.api, "PUT", subresource_path(cluster.namespace, VIRTUAL_MACHINE.plural, name, verb), body)
    except ApiError as error:
        how = "force " + gerund if forced else gerund
        raise CommandError(f"Error {how} VirtualMachine {name}: {error.message}") from None
    click.echo(f"VM {name} was scheduled to {verb}")


def _grace_period(grace_period: int, force: bool) -> int | None:
    """Upstream accepts a grace period only together with --force (an immediate, forced stop)."""
    source = click.get_current_context().get_parameter_source("grace_period")
    given = source not in (None, ParameterSource.DEFAULT)
    if given != force:
        raise click.UsageError("Must both use --force=true and set --grace-period.")
    return grace_period if force else None


def _force_options(command: Any) -> Any:
    command = click.option("--grace-period", type=int, default=NO_GRACE_PERIOD, show_default=True,
                           help="Seconds the VMI gets to shut down gracefully; only with --force "
                                "(currently only 0 is supported).")(command)
    return click.option("--force", is_flag=True, default=False,
                        help="Stop the VMI immediately (with --grace-period=0), bypassing graceful deletion.")(command)


@click.command()
@click.argument("name", metavar="VM")
@click.option("--paused", is_flag=True, default=False, help="Start the virtual machine in paused state.")
@dry_run_option
@cluster_options
def start(name: str, paused: bool, dry_run: bool) -> None:
    """Start a virtual machine."""
    body: dict[str, Any] = {**dry_run_field(dry_run)}
    if paused:
        body["paused"] = True
    schedule("start", "starting", name, body)


@click.command()
@click.argument("name", metavar="VM")
@_force_options
@dry_run_option
@cluster_options
def stop(name: str, force: bool, grace_period: int, dry_run: bool) -> None:
    """Stop a virtual machine."""
    grace = _grace_period(grace_period, force)
    body: dict[str, Any] = {**dry_run_field(dry_run)}
    if grace is not None:
        body["gracePeriod"] = grace
    schedule("stop", "stopping", name, body, forced=force)


@click.command()
@click.argument("name", metavar="VM")
@_force_options
@dry_run_option
@cluster_options
def restart(name: str, force: bool, grace_period: int, dry_run: bool) -> None:
    """Restart a virtual machine."""
    grace = _grace_period(grace_period, force)
    body: dict[str, Any] = {**dry_run_field(dry_run)}
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    schedule("restart", "restarting", name, body, forced=force)


def _node_selector(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """key=value[,key=value...], repeatable, as cobra's StringToString flags take them."""
    selector: dict[str, str] = {}
    for value in values:
        for pair in filter(None, value.split(",")):
            key, sep, val = pair.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{pair!r} must be formatted as key=value")
            selector[key] = val
    return selector


@click.command()
@click.argument("name", metavar="VM")
@click.option("--addedNodeSelector", "added_node_selector", multiple=True, callback=_node_selector,
              metavar="KEY=VALUE[,KEY=VALUE]",
              help="An additional node selector for this one migration; it can only narrow the VM's own "
                   "constraints.")
@dry_run_option
@cluster_options
def migrate(name: str, added_node_selector: dict[str, str], dry_run: bool) -> None:
    """Migrate a virtual machine."""
    body: dict[str, Any] = {**dry_run_field(dry_run)}
    if added_node_selector:
        body["addedNodeSelector"] = added_node_selector
    schedule("migrate", "migrating", name, body)
