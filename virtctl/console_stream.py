"""Copy bytes between a console websocket and the local terminal or pipes.

stdin -> guest as binary frames, guest -> stdout, until one of:
- the escape byte Ctrl+] (0x1d) arrives on stdin (what came before it is still sent),
- stdin ends (a script's input is done; the guest's last answer is still drained),
- the server closes the connection.
"""

from __future__ import annotations

import enum
import io
import os
import select
import threading
import time
from collections.abc import Callable
from typing import IO

import websocket

ESCAPE = 0x1D  # Ctrl+], as telnet and virsh console use it
READ_SIZE = 4096
# After stdin ends, keep printing the guest's answer until it is quiet this long (bounded).
DRAIN_IDLE = 0.5
DRAIN_MAX = 5.0
_POLL = 0.2


class Ending(enum.Enum):
    ESCAPED = "escaped"
    INPUT_CLOSED = "input closed"
    SERVER_CLOSED = "server closed"


def split_at_escape(chunk: bytes) -> tuple[bytes, bool]:
    """The bytes to send before the escape byte, and whether the escape byte came."""
    index = chunk.find(ESCAPE)
    return (chunk, False) if index < 0 else (chunk[:index], True)


def input_reader(stream: IO[bytes], stop: threading.Event) -> Callable[[], bytes | None]:
    """A read of at most READ_SIZE bytes: b"" at end of input, None when ``stop`` was set.

    A real file descriptor is polled, so the reading thread notices ``stop`` and ends
    instead of staying blocked in read() (a daemon thread blocked on stdin can abort
    the interpreter at exit). Streams without one (tests) are read directly."""
    try:
        fd = stream.fileno()
    except (AttributeError, io.UnsupportedOperation, ValueError):
        read1 = getattr(stream, "read1", stream.read)
        return lambda: None if stop.is_set() else read1(READ_SIZE)

    def read() -> bytes | None:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], _POLL)
            if ready:
                return os.read(fd, READ_SIZE)
        return None
    return read


class ConsoleStream:
    def __init__(self, ws: websocket.WebSocket, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._ws = ws
        self._stdout = stdout
        self._done = threading.Event()
        self._stop_input = threading.Event()
        self._read = input_reader(stdin, self._stop_input)
        self._ending: Ending | None = None
        self._last_output = time.monotonic()

    def _finish(self, ending: Ending) -> None:
        if self._ending is None:
            self._ending = ending
        self._done.set()

    def _pump_output(self) -> None:
        try:
            while True:
                opcode, data = self._ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if data:
                    self._stdout.write(data)
                    self._stdout.flush()
                    self._last_output = time.monotonic()
        except (websocket.WebSocketException, OSError, ValueError):
            pass  # the connection is gone: that is the end of the session either way
        self._finish(Ending.SERVER_CLOSED)

    def _pump_input(self) -> None:
        try:
            while (chunk := self._read()) is not None:
                if not chunk:
                    self._finish(Ending.INPUT_CLOSED)
                    return
                data, escaped = split_at_escape(chunk)
                if data:
                    self._ws.send(data, opcode=websocket.ABNF.OPCODE_BINARY)
                if escaped:
                    self._finish(Ending.ESCAPED)
                    return
        except (websocket.WebSocketException, OSError):
            self._finish(Ending.SERVER_CLOSED)

    def _drain(self) -> None:
        deadline = time.monotonic() + DRAIN_MAX
        while not self._done.is_set() and time.monotonic() < deadline:
            if time.monotonic() - self._last_output >= DRAIN_IDLE:
                return
            time.sleep(0.05)

    def run(self) -> Ending:
        output = threading.Thread(target=self._pump_output, name="console-output", daemon=True)
        stdin = threading.Thread(target=self._pump_input, name="console-input", daemon=True)
        output.start()
        stdin.start()
        try:
            self._done.wait()
            if self._ending is Ending.INPUT_CLOSED:
                self._done.clear()
                # The last input was just sent: give the guest DRAIN_IDLE to start answering.
                self._last_output = time.monotonic()
                self._drain()
        finally:
            self._stop_input.set()
            self._close()
            output.join(2.0)
            stdin.join(1.0)
        return self._ending or Ending.SERVER_CLOSED

    def _close(self) -> None:
        try:
            self._ws.send_close()
        except (websocket.WebSocketException, OSError):
            pass
        self._ws.shutdown()
