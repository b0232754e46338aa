"""What the collectors read: an informer's cache (kube_client.controller.SharedInformer),
or anything else that lists objects, so a test can hand them a plain list."""

from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]


class Lister(Protocol):
    def list(self) -> list[Obj]: ...
