"""Reading one container log file the way `kubectl logs` asks: the last N lines, a
byte limit, timestamps, a since-time, and following a live run until it ends.

The log files hold the container's raw output (sandbox.launch hands the file to the
process as stdout and stderr), so no line carries the time it was written. Two
approximations follow, both documented for users of `--timestamps` and `--since`:

- timestamps: a line already in the file when the request arrives is stamped with
  the file's last modification time (exact for the newest line, an upper bound for
  older ones); a line read while following is stamped with the time it was read
  (within one poll interval of its write).
- since: the lines already in the file are all kept if the file changed at or after
  the since-time, and all dropped otherwise; followed lines are always newer.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

from local_cluster.pod_log_options import PodLogOptions

CHUNK = 64 * 1024
_TAIL_BLOCK = 8 * 1024
FOLLOW_POLL_SECONDS = 0.1


def rfc3339_nano(epoch_ns: int) -> str:
    # Fixed nine digits, as kubelet's RFC3339NanoFixed, so stamped lines align.
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def tail_offset(log: BinaryIO, lines: int, size: int) -> int:
    """Where the last ``lines`` lines of the first ``size`` bytes begin."""
    if lines == 0 or size == 0:
        return size
    log.seek(size - 1)
    # A final newline ends the last line; it does not start an empty one.
    end = size - 1 if log.read(1) == b"\n" else size
    found = 0
    position = end
    while position > 0:
        start = max(0, position - _TAIL_BLOCK)
        log.seek(start)
        block = log.read(position - start)
        index = len(block)
        while (index := block.rfind(b"\n", 0, index)) >= 0:
            found += 1
            if found == lines:
                return start + index + 1
        position = start
    return 0


class LineStamper:
    """Prefixes every line start with a timestamp, across chunk boundaries."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._at_line_start = True

    def stamp(self, chunk: bytes, epoch_ns: int) -> bytes:
        if not self._enabled or not chunk:
            return chunk
        prefix = rfc3339_nano(epoch_ns).encode() + b" "
        pieces = chunk.split(b"\n")
        out = bytearray()
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            if last and not piece:
                break  # the chunk ended with a newline
            if self._at_line_start:
                out += prefix
            out += piece
            if not last:
                out += b"\n"
            self._at_line_start = not last
        return bytes(out)


class ByteBudget:
    """limitBytes: the output (timestamps included, as kubelet counts) stops at the limit."""

    def __init__(self, limit: int | None) -> None:
        self._remaining = limit

    @property
    def exhausted(self) -> bool:
        return self._remaining is not None and self._remaining <= 0

    def take(self, chunk: bytes) -> bytes:
        if self._remaining is None:
            return chunk
        chunk = chunk[: self._remaining]
        self._remaining -= len(chunk)
        return chunk


def _read_to_end(log: BinaryIO) -> list[bytes]:
    chunks = []
    while chunk := log.read(CHUNK):
        chunks.append(chunk)
    return chunks


async def stream_log(log: BinaryIO, options: PodLogOptions, live: Callable[[], bool],
                     poll_seconds: float = FOLLOW_POLL_SECONDS) -> AsyncIterator[bytes]:
    """The requested part of an open log file; with ``follow`` it goes on while
    ``live()`` says the run may still write, and ends once the run is over and the
    file is drained."""
    stamper = LineStamper(options.timestamps)
    budget = ByteBudget(options.limit_bytes)
    since = options.since_epoch()
    stat = os.fstat(log.fileno())
    start = 0 if options.tail_lines is None else tail_offset(log, options.tail_lines, stat.st_size)
    if since is not None and stat.st_mtime < since:
        start = stat.st_size
    log.seek(start)
    for chunk in _read_to_end(log):
        yield budget.take(stamper.stamp(chunk, stat.st_mtime_ns))
        if budget.exhausted:
            return
    if not options.follow:
        return
    while True:
        # Asked before reading: output written just before the run ended is still read.
        running = live()
        for chunk in _read_to_end(log):
            yield budget.take(stamper.stamp(chunk, time.time_ns()))
            if budget.exhausted:
                return
        if not running:
            return
        await asyncio.sleep(poll_seconds)
