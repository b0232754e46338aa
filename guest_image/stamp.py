"""The build stamp: what a build was made from and what it produced, so a second
`build` with the same inputs does nothing (build.sh runs it on every invocation).

Inputs are the kernel package and version, the busybox binary, the versions of the
Debian tools that shape the disk, and this package's own source. Outputs are
recorded by hash, so an output changed or removed behind our back is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from guest_image.initramfs import BUSYBOX

FORMAT = 1
# Debian packages whose files or behaviour end up in the outputs.
TOOL_PACKAGES = ("syslinux", "syslinux-common", "mtools", "dosfstools", "busybox-static")
_SOURCES = Path(__file__).resolve().parent


@dataclass
class Stamp:
    inputs: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    images: dict[str, str] = field(default_factory=dict)  # ref -> manifest digest
    kernel_version: str = ""
    modules: list[str] = field(default_factory=list)
    format: int = FORMAT


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tool_versions() -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}=${Version}\\n", *TOOL_PACKAGES],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip().replace("\n", " ")


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(_SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def current_inputs(kernel_key: str) -> dict[str, str]:
    return {
        "kernel": kernel_key,
        "busybox": sha256_file(BUSYBOX),
        "tools": _tool_versions(),
        "source": _source_hash(),
    }


def read(path: Path) -> Stamp | None:
    try:
        raw = json.loads(path.read_text())
        stamp = Stamp(**raw)
    except (OSError, ValueError, TypeError):
        return None
    return stamp if stamp.format == FORMAT else None


def write(path: Path, stamp: Stamp) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(stamp), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def outputs_match(stamp: Stamp, files: tuple[Path, ...]) -> bool:
    """Every output exists with the hash the stamp recorded for it."""
    for path in files:
        expected = stamp.outputs.get(path.name)
        if expected is None or not path.is_file() or sha256_file(path) != expected:
            return False
    return True
