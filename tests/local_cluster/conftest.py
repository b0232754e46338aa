"""One etcd for the storage tests of a module, on loopback, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_cluster.storage.etcd_process import EtcdProcess


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    process = EtcdProcess(tmp_path_factory.mktemp("etcd"))
    process.start_blocking()
    try:
        yield process
    finally:
        process.stop_blocking()
