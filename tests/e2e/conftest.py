"""A local cluster with kubevirt-py deployed, one per test module.

Per module, not per package: two local clusters on one machine would hand out the same
loopback pod addresses, and a component of one would answer the other's calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Kubevirt, local_kubevirt


@pytest.fixture(scope="module")
def kubevirt() -> Iterator[Kubevirt]:
    with local_kubevirt(nodes=2) as cluster:
        yield cluster
