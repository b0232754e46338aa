"""Scratch directories that tests create and always remove."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def scratch_dir(prefix: str, under: str = "/tmp") -> Iterator[Path]:
    """under: /tmp keeps unix socket paths short; /var/tmp is outside a pod's private /tmp."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=under))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
