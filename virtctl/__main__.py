"""Entry point of the virtctl command."""

from __future__ import annotations

import click

from virtctl import client_version
from virtctl.local import local


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """virtctl controls KubeVirt virtual machines (kubevirt.io/v1)."""


@main.command()
def version() -> None:
    """Print the client version."""
    click.echo(f"Client Version: kubevirt-py v{client_version()}")


main.add_command(local)


if __name__ == "__main__":
    main()
