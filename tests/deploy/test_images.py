"""deploy/images/Dockerfile, checked without building (no image registry or Docker daemon
here): one target per component image, every stage on debian:12-slim, one build stage
copying only files that exist and that .dockerignore lets through and installing every
package the project ships, and each target starting the module the local cluster maps the
image to."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from local_cluster.kubelet.images import COMPONENT_MODULES
from tests.deploy.manifests import DEPLOY, REPO

DOCKERFILE = DEPLOY / "images" / "Dockerfile"
COMPONENTS = ("virt-api", "virt-controller", "virt-handler", "virt-launcher")
BASE = "debian:12-slim"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            lines.append((keyword.upper(), args.strip()))
            pending = ""
    return lines


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """Each stage by its name (FROM ... AS name), in order."""
    found: dict[str, list[tuple[str, str]]] = {}
    for keyword, args in instructions(dockerfile):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(found))
            found[name] = []
        found[list(found)[-1]].append((keyword, args))
    return found


def _base_image(name: str, all_stages: dict[str, list[tuple[str, str]]]) -> str:
    """Where a stage's FROM chain ends: an image, not another stage."""
    base = all_stages[name][0][1].split()[0]
    return _base_image(base, all_stages) if base in all_stages else base


def _in_target(target: str, all_stages: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """A target's instructions, those of the stages it builds FROM included (first first)."""
    base = all_stages[target][0][1].split()[0]
    return (_in_target(base, all_stages) if base in all_stages else []) + all_stages[target]


def dockerignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents wins."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            ignored = not negate
    return ignored


def _ignore_patterns() -> list[str]:
    return [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_there_is_one_target_per_component_image() -> None:
    assert set(COMPONENTS) <= set(stages(DOCKERFILE))


def test_every_stage_builds_on_debian_12_slim() -> None:
    all_stages = stages(DOCKERFILE)
    assert {_base_image(name, all_stages) for name in all_stages} == {BASE}


def test_copied_files_exist_and_reach_the_build_context() -> None:
    patterns = _ignore_patterns()
    copied = 0
    for keyword, args in instructions(DOCKERFILE):
        if keyword != "COPY" or args.startswith("--from="):
            continue
        *sources, _destination = shlex.split(args)
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the checkout"
            assert not dockerignored(source, patterns), f"COPY {source} is excluded by .dockerignore"
            copied += 1
    assert copied


def test_the_images_copy_every_package_the_project_installs() -> None:
    """pip installs the packages it finds: one the image forgets is silently missing."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    included = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    generated = {"kubevirt_grpc"}  # by build.sh from proto/, inside the build stage
    copied = {source.rstrip("/") for keyword, args in stages(DOCKERFILE)["build"]
              if keyword == "COPY" for source in shlex.split(args)[:-1]}
    assert included - generated <= copied
    # build.sh generates the gRPC code from proto/; pyproject.toml names README.md.
    assert {"pyproject.toml", "README.md", "build.sh", "proto"} <= copied


def test_the_build_stage_finds_the_pinned_grpcio_tools() -> None:
    # The shell pipeline in the build stage, in Python: it must find exactly one pin.
    pins = re.findall(r'"grpcio-tools==[^"]*"', (REPO / "pyproject.toml").read_text())
    assert len(pins) == 1
    build = " ".join(args for keyword, args in stages(DOCKERFILE)["build"])
    assert "grpcio-tools==[^\"]*" in build and "build.sh proto" in build and "pip install --no-cache-dir ." in build


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_entrypoint_runs_the_component_the_local_cluster_maps_the_image_to(component: str) -> None:
    target = _in_target(component, stages(DOCKERFILE))
    entrypoint = [json.loads(args) for keyword, args in target if keyword == "ENTRYPOINT"]
    assert entrypoint[-1] == ["/opt/kubevirt-py/bin/python", "-m", COMPONENT_MODULES[component]]


@pytest.mark.parametrize("component", ("virt-api", "virt-controller"))
def test_images_that_must_not_run_as_root_have_a_numeric_user(component: str) -> None:
    users = [args for keyword, args in _in_target(component, stages(DOCKERFILE)) if keyword == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"


def test_the_dockerignore_matcher_follows_dockers_rules() -> None:
    patterns = ["*", "!pki/", "**/__pycache__"]
    assert dockerignored(".venv/bin/python", patterns)
    assert not dockerignored("pki/cluster_ca.py", patterns)
    assert dockerignored("pki/__pycache__/x.pyc", patterns)
