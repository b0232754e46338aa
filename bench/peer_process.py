"""A helper process for a bench (a second handler, say): started with ``argv``, it prints its
gRPC port on its first stdout line and runs until its stdin is closed, so it ends with the
bench even when the bench is killed."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

START_SECONDS = 60.0
STOP_SECONDS = 10.0


@contextlib.asynccontextmanager
async def peer_process(argv: list[str], cwd: Path | None = None
                       ) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """Yields (the process, the port it printed)."""
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_SECONDS)
        if not line.strip():
            raise RuntimeError(f"{' '.join(argv[1:3])}: the helper process did not start")
        yield process, int(line)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
