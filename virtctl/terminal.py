"""Raw mode for an interactive console: every key goes to the guest as typed (no line
editing, no local echo, Ctrl+C is a byte for the guest), and the terminal comes back
as it was however the session ends."""

from __future__ import annotations

import contextlib
import termios
import tty
from collections.abc import Iterator
from typing import IO, Any


@contextlib.contextmanager
def raw_terminal(stream: IO[Any]) -> Iterator[None]:
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    # TCSADRAIN, not setraw's default TCSAFLUSH: keys typed while connecting still reach the guest.
    tty.setraw(fd, termios.TCSADRAIN)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
