"""Where the local cluster keeps its state unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STATE_DIR = Path(os.environ.get("KUBEVIRT_PY_STATE", Path.home() / ".kubevirt-py" / "local"))
