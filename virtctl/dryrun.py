"""--dry-run, shared by every verb that changes state: the server checks the request
and changes nothing (metav1 DryRunAll)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DRY_RUN_ALL = "All"


def dry_run_option(command: F) -> F:
    return click.option("--dry-run", is_flag=True, default=False,
                        help="Have the server check the request without performing any changes.")(command)


def dry_run_field(dry_run: bool) -> dict[str, list[str]]:
    """The options body's dryRun field; upstream also announces a dry run on stdout."""
    if not dry_run:
        return {}
    click.echo("Dry Run execution")
    return {"dryRun": [DRY_RUN_ALL]}
