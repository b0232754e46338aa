"""The launcher's entry point spawns its libvirtd before anything heavy is imported, so
the daemon's start overlaps the launcher's own (virt_launcher/__main__.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from virt_launcher.libvirtd import Libvirtd, LibvirtdError

HEAVY = ("asyncio", "grpc", "libvirt", "google.protobuf", "virt_launcher.launcher")


def test_the_entry_point_module_imports_nothing_heavy() -> None:
    probe = (f"import json, sys, virt_launcher.__main__; "
             f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []


def test_waiting_for_a_libvirtd_never_spawned_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LibvirtdError, match="not spawned"):
        Libvirtd(tmp_path).wait_ready()
