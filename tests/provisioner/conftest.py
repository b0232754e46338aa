"""Provisioner test fixtures: a running Provisioner over a private root, a private namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from provisioner_testkit import Claims

from tests.wait import eventually as wait_for

from local_cluster.provisioner import Provisioner
from kube_client.rawapi import call
from tests.daemons import running


@pytest.fixture
def core(control_plane) -> Iterator[client.CoreV1Api]:
    api_client = control_plane.api_client()
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


@pytest.fixture
def volume_root(tmp_path: Path) -> Path:
    return tmp_path / "volumes"


@pytest.fixture
def provisioner(control_plane, volume_root: Path) -> Iterator[Provisioner]:
    api_client = control_plane.api_client()
    with running(Provisioner(api_client, volume_root), api_client, "provisioner", lambda p: p.wait_ready(10),
                 "the provisioner never became ready") as started:
        yield started


@pytest.fixture
def claims(core: client.CoreV1Api, provisioner: Provisioner) -> Iterator[Claims]:
    """Claims in a fresh namespace; on the way out they are deleted and their volumes
    waited for, while the provisioner still runs, so no test leaves volumes behind."""
    namespace = f"p-{uuid.uuid4().hex[:8]}"
    call(core.create_namespace, {"metadata": {"name": namespace}})
    made = Claims(core, namespace)
    try:
        yield made
    finally:
        for claim in call(core.list_namespaced_persistent_volume_claim, namespace).get("items") or []:
            made.delete(claim["metadata"]["name"])
        wait_for(lambda: not [v for v in made.our_volumes()
                              if (v.get("status") or {}).get("phase") != "Failed"], what="volumes to go")
        call(core.delete_namespace, namespace)
