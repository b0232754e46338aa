"""Controllers that live inside the API server process: fed by its change hooks, working
in one asyncio task."""

from __future__ import annotations

import asyncio
from typing import Any

from local_cluster.apiserver.resources import ResourceInfo

Obj = dict[str, Any]


class InProcessController:
    name = "controller"

    def __init__(self, apiserver: Any) -> None:
        self._api = apiserver
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Catch up with what is stored, then _run()."""
        raise NotImplementedError

    def _run(self) -> None:
        """Subscribe to changes and start the work loop (called at the end of start())."""
        self._api.objects.hooks.append(self._on_change)
        self._task = asyncio.create_task(self._work(), name=self.name)

    async def stop(self) -> None:
        if self._on_change in self._api.objects.hooks:
            self._api.objects.hooks.remove(self._on_change)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _on_change(self, info: ResourceInfo, after: Obj | None, before: Obj | None) -> None:
        raise NotImplementedError

    async def _work(self) -> None:
        raise NotImplementedError
