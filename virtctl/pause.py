"""`virtctl pause|unpause vm|vmi NAME`: PUT the VMI's pause/unpause subresource.

For a VM the VM is read first (so a missing VM is reported as such) and its VMI, which
carries the VM's name, is targeted, as upstream does."""

from __future__ import annotations

from typing import Any

import click

from kubevirt_api.groups import VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE
from kubevirt_api.phases import RunStrategy
from virtctl.clientconfig import Cluster, cluster_options, connect
from virtctl.dryrun import dry_run_field, dry_run_option
from virtctl.errors import ApiError, CommandError
from virtctl.subresources import object_path, request, subresource_path

NOT_FOUND = 404

# Upstream names the resource type case-insensitively, singular or plural, long or short.
_TYPES = {name: kind for kind in (VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE)
          for name in (kind.singular, kind.plural, *kind.short_names)}


def run_strategy(vm: dict[str, Any]) -> str:
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return str(spec["runStrategy"])
    return RunStrategy.ALWAYS.value if spec.get("running") else RunStrategy.HALTED.value


def _get_vm(cluster: Cluster, name: str) -> dict[str, Any]:
    try:
        return request(cluster.api, "GET", object_path(cluster.namespace, VIRTUAL_MACHINE.plural, name))
    except ApiError as error:
        raise CommandError(f"Error getting VirtualMachine {name}: {error.message}") from None


def _toggle(verb: str, gerund: str, resource_type: str, name: str, dry_run: bool) -> None:
    body = dry_run_field(dry_run)
    cluster = connect()
    vm = _get_vm(cluster, name) if _TYPES[resource_type.lower()] is VIRTUAL_MACHINE else None
    try:
        request(cluster.api, "PUT",
                subresource_path(cluster.namespace, VIRTUAL_MACHINE_INSTANCE.plural, name, verb), body)
    except ApiError as error:
        if vm is not None and error.status == NOT_FOUND and run_strategy(vm) == RunStrategy.HALTED.value:
            raise CommandError(f"Error {gerund} VirtualMachineInstance {name}. "
                               f"VirtualMachine {name} is not set to run") from None
        raise CommandError(f"Error {gerund} VirtualMachineInstance {name}: {error.message}") from None
    click.echo(f"VMI {name} was scheduled to {verb}")


_TYPE_ARGUMENT = click.argument("resource_type", metavar="vm|vmi",
                                type=click.Choice(sorted(_TYPES), case_sensitive=False))


@click.command()
@_TYPE_ARGUMENT
@click.argument("name")
@dry_run_option
@cluster_options
def pause(resource_type: str, name: str, dry_run: bool) -> None:
    """Pause a virtual machine by freezing it; its state stays in memory.

    The first argument is the resource type: vm (virtualmachine) or vmi
    (virtualmachineinstance); the second is its name."""
    _toggle("pause", "pausing", resource_type, name, dry_run)


@click.command()
@_TYPE_ARGUMENT
@click.argument("name")
@dry_run_option
@cluster_options
def unpause(resource_type: str, name: str, dry_run: bool) -> None:
    """Unpause a virtual machine.

    The first argument is the resource type: vm (virtualmachine) or vmi
    (virtualmachineinstance); the second is its name."""
    _toggle("unpause", "unpausing", resource_type, name, dry_run)
