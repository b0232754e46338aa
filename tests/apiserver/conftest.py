"""Helpers for API server tests: raw requests and unique namespaces."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client


def raw(api: client.ApiClient, method: str, path: str, body: Any = None,
        headers: dict[str, str] | None = None, query: list[tuple[str, str]] | None = None) -> tuple[int, Any]:
    """One request as-is (status, decoded JSON body), for what typed clients do not expose."""
    header_params = {"Accept": "application/json", "Content-Type": "application/json", **(headers or {})}
    token = (api.configuration.auth_settings().get("BearerToken") or {}).get("value")
    if token:
        header_params["Authorization"] = token
    url = api.configuration.host + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    response = api.call_api(method, url, header_params=header_params, body=body)
    data = response.read()
    return response.status, json.loads(data or b"null")


@pytest.fixture(scope="module")
def api(control_plane) -> client.ApiClient:
    return control_plane.api_client()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    try:
        client.CoreV1Api(api).delete_namespace(name)
    except client.ApiException:
        pass
