"""Entry point of the virtctl command."""

from __future__ import annotations

import click

from virtctl import client_version
from virtctl.clientconfig import cluster_options
from virtctl.console import console
from virtctl.create import create
from virtctl.lifecycle import migrate, restart, start, stop
from virtctl.local import local
from virtctl.pause import pause, unpause


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@cluster_options
def main() -> None:
    """virtctl controls KubeVirt virtual machines (kubevirt.io/v1)."""


@main.command()
def version() -> None:
    """Print the client version."""
    click.echo(f"Client Version: kubevirt-py v{client_version()}")


for command in (start, stop, restart, migrate, pause, unpause, console, create, local):
    main.add_command(command)


if __name__ == "__main__":
    main()
