"""The launcher's own libvirtd: its state directories are private tmpfs mounts in its own
mount namespace, its configuration ours, its QEMU capabilities cache the node's."""

from __future__ import annotations

from pathlib import Path

import pytest

from virt_launcher import libvirtd as libvirtd_module
from virt_launcher.libvirtd import Libvirtd, LibvirtdError, _fstab

PRIVATE = ("/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt")


def _mounts(pid: int) -> dict[str, tuple[str, str]]:
    """mount point -> (filesystem type, root inside its source) in pid's namespace."""
    found = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        found[fields[4]] = (fields[separator + 1], fields[3])
    return found


def test_the_daemon_runs_on_private_state_and_our_configuration(tmp_path: Path) -> None:
    caps = tmp_path / "caps cache"  # a blank on the way through fstab
    daemon = Libvirtd(tmp_path / "work", caps_cache=caps)
    daemon.spawn()
    try:
        daemon.connect().close()
        pid = int((daemon.sock_dir / "libvirtd.pid").read_text())
        inside, outside = _mounts(pid), _mounts(1)
        for directory in PRIVATE:
            assert inside[directory][0] == "tmpfs" and directory not in outside
        assert inside["/etc/libvirt"][1].endswith(str(daemon.conf_dir))
        assert inside["/var/cache/libvirt"][1].endswith("caps\\040cache")
        assert "/etc/libvirt" not in outside
    finally:
        daemon.stop()


def test_fstab_escapes_blanks_and_backslashes(tmp_path: Path) -> None:
    table = _fstab(Path("/work/a b\\c"), Path("/cache/x\ty"))
    assert "/work/a\\040b\\134c /etc/libvirt none bind 0 0" in table.splitlines()
    assert "/cache/x\\011y /var/cache/libvirt none bind 0 0" in table.splitlines()
    assert all(len(line.split()) == 6 for line in table.splitlines())


def test_the_daemon_loads_the_qemu_driver_alone(tmp_path: Path) -> None:
    # As upstream's virtqemud: the other drivers only cost start-up and memory.
    daemon = Libvirtd(tmp_path / "work", caps_cache=tmp_path / "caps")
    daemon.spawn()
    try:
        connection = daemon.connect()
        try:
            assert connection.getType() == "QEMU"
            pid = int((daemon.sock_dir / "libvirtd.pid").read_text())
            modules = {Path(line.split()[-1]).name for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                       if "/libvirt_driver_" in line}
            assert modules == {"libvirt_driver_qemu.so"}
        finally:
            connection.close()
    finally:
        daemon.stop()


def test_connect_ahead_hands_its_connection_over(tmp_path: Path) -> None:
    daemon = Libvirtd(tmp_path / "work")  # the node's capabilities cache: no QEMU probe of seconds
    daemon.spawn()
    try:
        daemon.connect_ahead()
        daemon.connect_ahead()  # once per spawn: a second call changes nothing
        connection = daemon.connect()
        try:
            assert connection.getType() == "QEMU"
            assert connection.listAllDomains() == []
        finally:
            connection.close()
        again = daemon.connect()  # nothing ahead any more: a connection of its own
        again.close()
    finally:
        daemon.stop()


def test_connect_ahead_reports_a_daemon_that_never_serves(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(libvirtd_module, "LIBVIRTD", "/bin/false")
    daemon = Libvirtd(tmp_path / "work", caps_cache=tmp_path / "caps")
    daemon.spawn()
    daemon.connect_ahead()
    with pytest.raises(LibvirtdError, match="exited with 1 while starting"):
        daemon.connect()
    assert not daemon.alive()
