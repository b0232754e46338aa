"""Where a VMI's serial console log is on the local cluster's disk.

The launcher writes the guest's serial output to serial0.log in its working
directory, which lives in the launcher pod's `private` emptyDir; on the local
cluster that directory is under the node's kubelet root, so the demo and tests can
read the guest's console without attaching to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubevirt_api.pod_layout import PRIVATE_DIR

Obj = dict[str, Any]
PRIVATE_VOLUME = "private"


def serial_log_path(state_dir: Path, launcher_pod: Obj, vmi_uid: str) -> Path:
    """state_dir: the local cluster's; launcher_pod: the VMI's pod as the API returns it."""
    node = (launcher_pod.get("spec") or {}).get("nodeName") or ""
    pod_uid = launcher_pod["metadata"]["uid"]
    work_dir = Path(PRIVATE_DIR, vmi_uid).relative_to(PRIVATE_DIR)
    return (state_dir / "nodes" / node / "pods" / pod_uid / "volumes" / "empty-dir" / PRIVATE_VOLUME
            / work_dir / "serial0.log")
