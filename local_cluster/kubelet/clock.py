"""Timestamps in the RFC 3339 form the Kubernetes API uses (second precision, UTC).

Standard library only: the sandbox trampoline imports this module."""

from __future__ import annotations

import time


def rfc3339(epoch: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None else epoch))

