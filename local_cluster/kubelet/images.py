"""Image resolution: what a container's image means on this machine.

Images of our own components (virt-api, virt-controller, virt-handler,
virt-launcher, virtctl, under any registry and tag) run this checkout's Python
entry points on the host's root filesystem; every other image comes from the node's
local OCI layout and runs on its own unpacked root filesystem.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubevirt_api.pod_layout import IMAGE_STORE_ENV
from oci_layout.image_ref import InvalidReference, parse_reference
from oci_layout.store import ImageFormatError, ImageNotFound, find_image
from oci_layout.unpack import unpack_image

COMPONENT_MODULES = {
    "virt-api": "virt_api",
    "virt-controller": "virt_controller",
    "virt-handler": "virt_handler",
    "virt-launcher": "virt_launcher",
    "virtctl": "virtctl",
}
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

__all__ = ["ImageNotFound", "ImageFormatError", "ImageResolver", "ResolvedImage", "ContainerCommandError"]


class ContainerCommandError(ValueError):
    """Neither the container nor its image says what to run."""


@dataclass(frozen=True)
class ResolvedImage:
    ref: str
    image_id: str
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    # None: the container runs on the host's root filesystem (our own components).
    rootfs: Path | None = None


def component_module(ref: str) -> str | None:
    try:
        return COMPONENT_MODULES.get(parse_reference(ref).last_component)
    except InvalidReference:
        return None


def _env_list(values: object) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in values or []:  # type: ignore[attr-defined]
        if isinstance(item, str):
            key, sep, value = item.partition("=")
            if key and sep:
                env[key] = value
    return env


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


class ImageResolver:
    def __init__(self, store_dir: Path | None, cache_dir: Path, python: str = sys.executable) -> None:
        self.store_dir = store_dir
        self.cache_dir = cache_dir
        self.python = python

    def resolve(self, ref: str) -> ResolvedImage:
        """Raises ImageNotFound (an image pull error) or ImageFormatError."""
        module = component_module(ref)
        if module is not None:
            return self._component(ref, module)
        stored = find_image(self.store_dir, ref)
        rootfs = unpack_image(stored, self.cache_dir)
        config = stored.runtime_config
        env = _env_list(config.get("Env"))
        env.setdefault("PATH", DEFAULT_PATH)
        try:
            repository = parse_reference(ref).canonical().rsplit("@", 1)[0].rsplit(":", 1)[0]
        except InvalidReference:
            repository = ref
        return ResolvedImage(
            ref=ref,
            image_id=f"{repository}@{stored.manifest_digest}",
            entrypoint=_strings(config.get("Entrypoint")),
            cmd=_strings(config.get("Cmd")),
            env=env,
            working_dir=config.get("WorkingDir") or None,
            rootfs=rootfs,
        )

    def _component(self, ref: str, module: str) -> ResolvedImage:
        venv_bin = os.path.dirname(self.python)
        env = {
            "PATH": f"{venv_bin}:{DEFAULT_PATH}",
            # The checkout is the image: its packages must import whatever the cwd.
            "PYTHONPATH": str(CHECKOUT_ROOT),
            # Logs are read while the process runs; block buffering would hide them.
            "PYTHONUNBUFFERED": "1",
        }
        if self.store_dir is not None:
            # containerDisks come from the node's image store, as a real node pulls
            # them into its container runtime; the launcher reads them from there.
            env[IMAGE_STORE_ENV] = str(self.store_dir)
        return ResolvedImage(
            ref=ref,
            image_id=f"kubevirt-py://{CHECKOUT_ROOT}#{module}",
            entrypoint=[self.python, "-m", module],
            cmd=[],
            env=env,
            working_dir=None,
            rootfs=None,
        )


def container_argv(image: ResolvedImage, container: dict[str, Any]) -> list[str]:
    """command replaces the image's entrypoint and drops its cmd; args replace cmd."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = [str(c) for c in command] + [str(a) for a in args or []]
    elif args:
        argv = list(image.entrypoint) + [str(a) for a in args]
    else:
        argv = list(image.entrypoint) + list(image.cmd)
    if not argv:
        raise ContainerCommandError(
            f"no command specified for container {container.get('name')!r} or its image {image.ref}"
        )
    return argv
