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
from local_cluster.kubelet.sandbox_spec import MountSpec, SandboxSpec

CHECKOUT = Path(__file__).resolve().parents[2]
# Each costs milliseconds at every container start and the trampoline needs none of them.
HEAVY = ("dataclasses", "typing", "tempfile", "runpy", "inspect", "subprocess")


def test_the_trampoline_imports_nothing_heavy() -> None:
    probe = _TRAMPOLINE.replace("sys.exit(main(sys.argv))",
                                f"import json; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60,
                          check=True, env={"PYTHONPATH": str(CHECKOUT)}, cwd="/")
    assert json.loads(done.stdout) == []


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
