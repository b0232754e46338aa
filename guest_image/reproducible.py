"""Fixed timestamps, so two builds from the same inputs give byte-identical outputs
(and the same OCI digests), whatever the clock said when they ran."""

from __future__ import annotations

import os
from pathlib import Path

# 2024-01-01T00:00:00Z. Not 0: FAT cannot store dates before 1980.
EPOCH = 1704067200


def build_env() -> dict[str, str]:
    """The environment for external tools (mtools, mkfs.fat) that honour it."""
    env = dict(os.environ)
    env["SOURCE_DATE_EPOCH"] = str(EPOCH)
    env["TZ"] = "UTC"
    env["LC_ALL"] = "C"
    return env


def clamp_tree(root: Path) -> None:
    """Set every mtime under root (root included) to EPOCH; symlinks themselves too."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (EPOCH, EPOCH), follow_symlinks=False)
    os.utime(root, (EPOCH, EPOCH))
