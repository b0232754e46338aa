"""Fixtures for the tiny test guest: the build (idempotent: quick when build.sh has
already made it) and QEMU processes that are always killed at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tiny_guest_qemu import QemuGuest

from guest_image import layout
from guest_image.build import build
from tests.tempdirs import scratch_dir


@pytest.fixture(scope="session")
def guest_outputs() -> layout.Outputs:
    return build().outputs


@pytest.fixture
def guest_dir() -> Iterator[Path]:
    # Short, private paths: QMP's unix socket path must stay under ~107 bytes.
    with scratch_dir("kvg-", "/tmp") as path:
        yield path


@pytest.fixture
def start_qemu(guest_dir: Path) -> Iterator[Callable[..., QemuGuest]]:
    started: list[QemuGuest] = []

    def start(args: list[str], machine: str = "q35") -> QemuGuest:
        guest = QemuGuest(guest_dir, args, machine)
        started.append(guest)
        return guest

    try:
        yield start
    finally:
        for guest in started:
            guest.close()
