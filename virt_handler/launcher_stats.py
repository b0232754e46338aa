"""Asks every launcher on this node for its domain's statistics (Cmd GetDomainStats), all
at once, when Prometheus scrapes.

At scrape time rather than from a cache refreshed in the background, as upstream's
virt-handler does: the figures are as fresh as the scrape, nothing is asked while nobody
scrapes, and a VMI that is gone is simply not asked again. A scrape waits at most
``deadline`` seconds and reports the launchers that answered by then; one that did not
keeps its request (bounded by ``call_timeout``) and is skipped by the scrapes that come
while it is still pending, so a stuck launcher costs one request, not one per scrape, and
never holds /metrics up.

The requests run on a loop of their own, so that a scrape shares nothing with the VMI
loop's launcher calls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubevirt_api.pod_layout import launcher_socket
from virt_handler.cmd_client import LauncherClient

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SCRAPE_DEADLINE_SECONDS = 5.0  # well inside Prometheus' default scrape timeout of 10 s
CALL_TIMEOUT_SECONDS = 30.0


async def _ask(socket: Path, timeout: float) -> Obj:
    async with await LauncherClient.connect(socket, timeout=timeout) as launcher:
        return await launcher.get_domain_stats()


class LauncherStatsScraper:
    def __init__(self, sockets_dir: Path, deadline: float = SCRAPE_DEADLINE_SECONDS,
                 call_timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self._sockets_dir = Path(sockets_dir)
        self._deadline = deadline
        self._call_timeout = call_timeout
        self._pending: dict[Path, asyncio.Task[Obj]] = {}  # touched on the loop's thread only
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="launcher-stats", daemon=True)
        self._thread.start()

    def scrape(self, vmis: Iterable[Obj]) -> list[tuple[Obj, Obj]]:
        """(VMI, its launcher's report) for every VMI whose launcher answered in time."""
        future = asyncio.run_coroutine_threadsafe(self._scrape(list(vmis)), self._loop)
        # _scrape keeps to the deadline itself; the bound is for a loop that has stopped.
        return future.result(self._deadline + 1.0)

    def close(self, timeout: float = 5.0) -> None:
        async def cancel_pending() -> None:
            for task in self._pending.values():
                task.cancel()
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(cancel_pending(), self._loop).result(timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    async def _scrape(self, vmis: list[Obj]) -> list[tuple[Obj, Obj]]:
        asked: dict[asyncio.Task[Obj], Obj] = {}
        for vmi in vmis:
            socket = Path(launcher_socket(vmi["metadata"]["uid"], str(self._sockets_dir)))
            if socket in self._pending:
                log.debug("launcher %s has not answered the last scrape yet: skipped", socket)
                continue
            if not socket.exists():
                continue  # its pod is gone or not there yet
            task = asyncio.create_task(_ask(socket, self._call_timeout))
            self._pending[socket] = task
            task.add_done_callback(lambda done, socket=socket: self._answered(socket, done))
            asked[task] = vmi
        if not asked:
            return []
        done, _ = await asyncio.wait(asked, timeout=self._deadline)
        return [(asked[task], task.result()) for task in done if not task.cancelled() and task.exception() is None]

    def _answered(self, socket: Path, task: asyncio.Task[Obj]) -> None:
        self._pending.pop(socket, None)
        if not task.cancelled() and task.exception() is not None:
            # A VMI that is shutting down, or a launcher without a domain yet: no figures.
            log.debug("no domain stats from %s: %s", socket, task.exception())
