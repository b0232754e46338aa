"""Fixtures: a working directory, a node directory for claims and host disks, an OCI store."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "vmi-work"


@pytest.fixture
def node(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    path.mkdir()
    return path
