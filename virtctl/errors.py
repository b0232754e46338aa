"""Failures virtctl reports to a person: one line on stderr, exit status 1, no traceback."""

from __future__ import annotations

import json
from typing import IO, Any

import click


class CommandError(click.ClickException):
    """An error the user can act on. Printed as is (no "Error: " prefix added), because
    the messages already read as upstream virtctl's do ("Error starting VirtualMachine ...")."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), err=file is None, file=file)


class ApiError(Exception):
    """A request the server refused (status >= 300) or that never reached it (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def status_message(body: bytes | str | None, fallback: str) -> str:
    """The human part of an error response: a Kubernetes Status's message, else the body's text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = (body or "").strip()
    try:
        decoded = json.loads(text) if text else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str) and decoded["message"]:
        return str(decoded["message"])
    return text or fallback
