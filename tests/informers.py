"""Informers for a test module's life: started and synced, stopped afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from kube_client.controller import SharedInformer


@contextlib.contextmanager
def synced(*informers: SharedInformer) -> Iterator[tuple[SharedInformer, ...]]:
    """The informers started and synced, stopped afterwards."""
    for informer in informers:
        informer.start()
        assert informer.wait_for_sync(30)
    try:
        yield informers
    finally:
        for informer in informers:
            informer.stop()
