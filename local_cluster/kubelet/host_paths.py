"""hostPath volumes on a simulated node.

Several simulated nodes share one machine, yet some host directories are node state
on a real cluster: virt-handler and its launchers meet in /var/run/kubevirt, and two
handlers on one machine must not meet there. Such paths resolve to a per-node copy
under the node's root; every other hostPath is the machine's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

NODE_PRIVATE_PREFIXES = ("/var/run/kubevirt", "/var/run/kubevirt-private", "/var/lib/kubevirt",
                         "/run/kubevirt", "/run/kubevirt-private")


@dataclass(frozen=True)
class NodeHostPaths:
    # None: every hostPath is the machine's own (a single node, or tests).
    node_root: Path | None = None
    private_prefixes: tuple[str, ...] = NODE_PRIVATE_PREFIXES

    def resolve(self, path: str) -> Path:
        """The machine path that plays the node's `path`; path is absolute."""
        pure = PurePosixPath(path)
        if self.node_root is None or ".." in pure.parts:
            return Path(path)
        for prefix in self.private_prefixes:
            if pure == PurePosixPath(prefix) or PurePosixPath(prefix) in pure.parents:
                return self.node_root.joinpath(*pure.parts[1:])
        return Path(path)
