"""The launcher's own libvirtd: its state directories are private tmpfs mounts in its own
mount namespace, its configuration ours, its QEMU capabilities cache the node's."""

from __future__ import annotations

from pathlib import Path

from virt_launcher.libvirtd import Libvirtd, _fstab

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
