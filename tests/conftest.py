"""Shared fixtures: a private temporary directory for sockets (paths must stay short)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cluster.threaded import ThreadedControlPlane


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="kv-", dir="/tmp"))
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ThreadedControlPlane]:
    state = Path(tempfile.mkdtemp(prefix="kv-cp-", dir="/tmp"))
    plane = ThreadedControlPlane(state)
    try:
        yield plane
    finally:
        plane.close()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def kubevirt_api(control_plane):
    """An API client of a control plane that serves the kubevirt.io CRDs from deploy/crds."""
    import yaml
    from kubernetes import client

    api = control_plane.api_client()
    for path in sorted((Path(__file__).resolve().parents[1] / "deploy" / "crds").glob("*.yaml")):
        try:
            client.ApiextensionsV1Api(api).create_custom_resource_definition(yaml.safe_load(path.read_text()))
        except client.ApiException as error:
            if error.status != 409:
                raise
    return api
