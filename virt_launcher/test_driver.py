"""libvirt's hypervisor-free test driver as a launcher's hypervisor.

For scale tests of the control plane: the launcher, its Cmd and Notify traffic and
every status write are real, but "starting" a domain only flips its state inside
libvirt's test driver, so hundreds of VMIs fit on a small machine. It has the
interface of Libvirtd (spawn, wait_ready, connect_ahead, connect, start, uri, alive, stop) so the
launcher does not care.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libvirt

# A node with room for any guest and no predefined domains (test:///default has one).
_NODE_XML = """\
<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>64</cores><threads>1</threads>
    <active>64</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>1073741824</memory>
</node>
"""


class TestDriver:
    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, work_dir: Path) -> None:
        self._node_file = Path(work_dir) / "test-node.xml"

    @property
    def uri(self) -> str:
        return f"test://{self._node_file}"

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Write the node file (once; again only after stop)."""
        if self._node_file.exists():
            return
        self._node_file.parent.mkdir(parents=True, exist_ok=True)
        self._node_file.write_text(_NODE_XML)

    def wait_ready(self) -> None:
        """Nothing to wait for: libvirt opens the test driver in process."""

    def connect_ahead(self) -> None:
        """Nothing to overlap: the connection opens in process, and there is no QEMU to learn."""

    def connect(self) -> libvirt.virConnect:
        import libvirt  # as Libvirtd: the launcher's entry point imports this module early

        return libvirt.open(self.uri)

    def alive(self) -> bool:
        return True  # in-process: it lives exactly as long as the launcher

    def stop(self) -> None:
        self._node_file.unlink(missing_ok=True)
