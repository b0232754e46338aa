"""`virtctl console VMI`: the guest's serial console over the console subresource's
websocket (subprotocol plain.kubevirt.io, raw bytes both ways).

Interactive when stdin is a terminal (raw mode, Ctrl+] leaves); from a script, stdin is
copied to the guest and the guest's output to stdout until stdin ends.
"""

from __future__ import annotations

import sys
import time

import click
import websocket

from kubevirt_api.groups import VIRTUAL_MACHINE_INSTANCE
from virtctl.clientconfig import Cluster, cluster_options, connect
from virtctl.console_stream import ConsoleStream, Ending
from virtctl.errors import ApiError, CommandError
from virtctl.subresources import CONSOLE_SUBPROTOCOL, dial, subresource_path
from virtctl.terminal import raw_terminal

# virt-api answers 400 while the VMI is not running yet; upstream retries each second.
NOT_READY = 400
RETRY_INTERVAL = 1.0
HANDSHAKE_TIMEOUT = 30.0


def open_console(cluster: Cluster, name: str, wait_seconds: float) -> websocket.WebSocket:
    """Connect to the VMI's console, retrying while it is not running, for up to ``wait_seconds``
    (0: one attempt only)."""
    path = subresource_path(cluster.namespace, VIRTUAL_MACHINE_INSTANCE.plural, name, "console")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return dial(cluster.api, path, CONSOLE_SUBPROTOCOL, HANDSHAKE_TIMEOUT)
        except ApiError as error:
            if error.status != NOT_READY or wait_seconds <= 0:
                raise CommandError(f"Error connecting to the console of VirtualMachineInstance {name}: "
                                   f"{error.message}") from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandError("Timeout trying to connect to the virtual machine instance")
        time.sleep(min(RETRY_INTERVAL, remaining))


def _session(ws: websocket.WebSocket) -> Ending:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    if not stdin.isatty():
        return ConsoleStream(ws, stdin, stdout).run()
    with raw_terminal(stdin):
        ending = ConsoleStream(ws, stdin, stdout).run()
    if ending is Ending.SERVER_CLOSED:
        click.echo("\nYou were disconnected from the console (another user connected, the VMI stopped, "
                   "or the network failed).", err=True)
    return ending


@click.command()
@click.argument("name", metavar="VMI")
@click.option("--timeout", type=click.IntRange(min=0), default=5, show_default=True,
              help="The number of minutes to wait for the virtual machine instance to be ready.")
@cluster_options
def console(name: str, timeout: int) -> None:
    """Connect to the serial console of a virtual machine instance.

    \b
    Examples:
      # Connect to the console of VirtualMachineInstance 'myvmi':
      virtctl console myvmi
      # Wait at most one minute for it to run (default 5 minutes):
      virtctl console --timeout=1 myvmi
      # From a script: send input, print the output, leave when the input ends:
      printf 'root\\n' | virtctl console myvmi
    """
    cluster = connect()
    try:
        ws = open_console(cluster, name, timeout * 60.0)
    except KeyboardInterrupt:
        click.echo("")
        return
    click.echo(f"Successfully connected to {name} console. The escape sequence is ^]", err=True)
    try:
        _session(ws)
    except KeyboardInterrupt:
        pass  # Ctrl+C outside raw mode ends the session quietly, as upstream
