"""One local cluster with kubevirt-py deployed, shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Kubevirt, local_kubevirt


@pytest.fixture(scope="package")
def kubevirt() -> Iterator[Kubevirt]:
    with local_kubevirt(nodes=2) as cluster:
        yield cluster
