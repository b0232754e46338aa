"""The console's byte pump on its own: the Ctrl+] escape on the input byte stream, and how
a session ends (escape, end of input with the guest's answer drained, server hang-up)."""

from __future__ import annotations

import io
import os
import queue
import threading

import pytest
import websocket

from virtctl import console_stream
from virtctl.console_stream import ESCAPE, ConsoleStream, Ending, split_at_escape

CLOSED = object()


@pytest.mark.parametrize(("chunk", "sent", "escaped"), [
    (b"", b"", False),
    (b"ls -l\n", b"ls -l\n", False),
    (b"\x1d", b"", True),
    (b"abc\x1d", b"abc", True),
    (b"abc\x1ddef", b"abc", True),
    (b"\x1d\x1d", b"", True),
    (b"\x03\x04\x1b[A", b"\x03\x04\x1b[A", False),  # Ctrl+C, Ctrl+D, arrows: all for the guest
])
def test_split_at_escape(chunk: bytes, sent: bytes, escaped: bool) -> None:
    assert ESCAPE == 0x1D
    assert split_at_escape(chunk) == (sent, escaped)


class FakeWebSocket:
    """Echoes what is sent (optionally), hands out queued frames, and can hang up."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.sent: list[tuple[bytes, int]] = []
        self.frames: queue.Queue[object] = queue.Queue()
        self.closed = threading.Event()

    def send(self, data: bytes, opcode: int) -> None:
        if self.closed.is_set():
            raise websocket.WebSocketConnectionClosedException("closed")
        self.sent.append((data, opcode))
        if self.echo:
            self.frames.put(data)

    def recv_data(self) -> tuple[int, bytes]:
        frame = self.frames.get(timeout=10)
        if frame is CLOSED:
            raise websocket.WebSocketConnectionClosedException("closed")
        if frame == "close":
            return websocket.ABNF.OPCODE_CLOSE, b""
        assert isinstance(frame, bytes)
        return websocket.ABNF.OPCODE_BINARY, frame

    def send_close(self) -> None:
        self.closed.set()

    def shutdown(self) -> None:
        self.closed.set()
        self.frames.put(CLOSED)

    def hang_up(self) -> None:
        self.frames.put("close")


def session(stdin: bytes, ws: FakeWebSocket) -> tuple[Ending, bytes]:
    stdout = io.BytesIO()
    ending = ConsoleStream(ws, io.BytesIO(stdin), stdout).run()  # type: ignore[arg-type]
    return ending, stdout.getvalue()


def test_input_goes_out_as_binary_frames_and_the_answer_is_drained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_stream, "DRAIN_IDLE", 0.2)
    ws = FakeWebSocket()
    ending, out = session(b"root\npassword\n", ws)
    assert ending is Ending.INPUT_CLOSED
    assert b"".join(d for d, _ in ws.sent) == b"root\npassword\n"
    assert {opcode for _, opcode in ws.sent} == {websocket.ABNF.OPCODE_BINARY}
    assert out == b"root\npassword\n"
    assert ws.closed.is_set()


def test_escape_stops_before_the_escape_byte() -> None:
    ws = FakeWebSocket(echo=False)
    ending, _ = session(b"echo hi\n\x1dshutdown -h now\n", ws)
    assert ending is Ending.ESCAPED
    assert b"".join(d for d, _ in ws.sent) == b"echo hi\n"


def test_server_hang_up_ends_the_session_with_stdin_still_open() -> None:
    ws = FakeWebSocket(echo=False)
    ws.frames.put(b"login: ")
    ws.hang_up()
    read_end, write_end = os.pipe()  # the writer stays open: stdin never ends by itself
    stdout = io.BytesIO()
    try:
        with open(read_end, "rb", buffering=0, closefd=False) as stdin:
            ending = ConsoleStream(ws, stdin, stdout).run()  # type: ignore[arg-type]
    finally:
        os.close(read_end)
        os.close(write_end)
    assert ending is Ending.SERVER_CLOSED
    assert stdout.getvalue() == b"login: "
    assert not [t for t in threading.enumerate() if t.name.startswith("console-")]
