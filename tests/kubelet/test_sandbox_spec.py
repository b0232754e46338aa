"""The trampoline's contract with the kubelet (sandbox_spec) and its import footprint:
the trampoline starts before every container's command, so what it imports delays them all."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from local_cluster.kubelet.proc import ProcessIdentity
from local_cluster.kubelet.sandbox import _TRAMPOLINE
from local_cluster.kubelet.sandbox_spec import MountSpec, SandboxSpec, status_json

CHECKOUT = Path(__file__).resolve().parents[2]
# Each costs milliseconds at every container start and the trampoline needs none of them.
HEAVY = ("dataclasses", "typing", "tempfile", "runpy", "inspect", "subprocess", "json", "re", "enum", "signal",
         "pathlib", "datetime", "functools", "collections")


def test_the_trampoline_imports_nothing_heavy() -> None:
    probe = _TRAMPOLINE.replace("sys.exit(main(sys.argv))",
                                f"print(' '.join(m for m in {list(HEAVY)!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60,
                          check=True, env={"PYTHONPATH": str(CHECKOUT)}, cwd="/")
    assert done.stdout.split() == []


def test_a_spec_is_written_and_read_back(tmp_path: Path) -> None:
    spec = SandboxSpec(argv=["/bin/true"], env={"A": "1"}, run_dir=str(tmp_path), pod_tmp="/tmp/pod",
                       mounts=[MountSpec("/src", "/dst", read_only=True)], hostname="pod-1")
    assert SandboxSpec.read(spec.write()) == spec
    (tmp_path / "spec").write_bytes(b"{not marshal")
    with pytest.raises(ValueError, match="holds no sandbox spec"):
        SandboxSpec.read(tmp_path / "spec")


@pytest.mark.parametrize("record", [
    {"pid": 12, "startTicks": None, "startedAt": "2026-11-26T08:00:00Z"},
    {"message": 'quote " backslash \\ newline \n tab \t nul \x00 \u00e9 \u2028', "ok": True, "exitCode": 0},
    {"message": "undecodable /tmp/\udcff path"},
])
def test_status_reports_are_the_json_the_kubelet_reads(record: dict[str, object]) -> None:
    assert json.loads(status_json(record)) == record


def test_a_status_report_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="'mounts'"):
        status_json({"mounts": []})


def _spec() -> SandboxSpec:
    return SandboxSpec(argv=["/bin/true"], env={"A": "1"}, run_dir="/run/x", pod_tmp="/tmp/pod",
                       mounts=[MountSpec("/src", "/dst", read_only=True)], hostname="pod-1")


def test_a_spec_survives_json_copy_and_pickle() -> None:
    spec = _spec()
    assert SandboxSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert copy.deepcopy(spec) == spec and pickle.loads(pickle.dumps(spec)) == spec
    assert spec.to_json()["mounts"] == [{"source": "/src", "target": "/dst", "read_only": True}]
    assert (spec.working_dir, spec.rootfs, spec.kept_host_paths) == (None, None, [])


def test_specs_and_identities_are_immutable_values() -> None:
    spec = _spec()
    with pytest.raises(AttributeError, match="immutable"):
        spec.argv = []  # type: ignore[misc]
    assert spec != SandboxSpec(argv=["/bin/true"], env={}, run_dir="/run/x", pod_tmp="/tmp/pod")
    assert hash(MountSpec("/a", "/b")) == hash(MountSpec("/a", "/b"))
    # Defaults are fresh per instance, never shared between specs.
    first, second = (SandboxSpec(argv=[], env={}, run_dir="r", pod_tmp="t") for _ in range(2))
    assert first.mounts is not second.mounts
    identity = ProcessIdentity(10, 20)
    assert identity == ProcessIdentity(10, 20) and {identity} == {ProcessIdentity(10, 20)}
    assert copy.deepcopy(identity) == identity
    with pytest.raises(AttributeError, match="immutable"):
        identity.pid = 11  # type: ignore[misc]


def test_a_spec_names_a_missing_or_unknown_field() -> None:
    with pytest.raises(TypeError, match="pod_tmp"):
        SandboxSpec(argv=[], env={}, run_dir="r")
    with pytest.raises(TypeError, match="nonsense"):
        MountSpec(source="/a", target="/b", nonsense=True)
