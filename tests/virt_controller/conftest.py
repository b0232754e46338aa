"""Fixtures for whole-virt-controller tests: the install namespace it runs in."""

from __future__ import annotations

import pytest
from kubernetes import client

from pki.authority import KeyPair
from pki.cluster_ca import ensure_ca


@pytest.fixture
def install_namespace(kubevirt_api) -> str:
    """The kubevirt namespace, there whether or not an earlier test made it."""
    try:
        client.CoreV1Api(kubevirt_api).create_namespace({"metadata": {"name": "kubevirt"}})
    except client.ApiException as error:
        assert error.status == 409
    return "kubevirt"


@pytest.fixture
def cluster_ca(kubevirt_api, install_namespace) -> KeyPair:
    return ensure_ca(client.CoreV1Api(kubevirt_api))

