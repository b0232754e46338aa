"""Helpers for the storage tests: VMIs, qemu-io writes and reads, ISO contents."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path
from typing import Any

import pycdlib

from virt_launcher.storage import StorageContext, prepare_volumes


def vmi(*volumes: dict[str, Any], name: str = "testvm", uid: str = "1f0e9a52-7d35-4b7e-9a3c-4a1c2b3d4e5f",
        hostname: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"domain": {"devices": {}}, "volumes": list(volumes)}
    if hostname:
        spec["hostname"] = hostname
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": "ns1", "uid": uid},
        "spec": spec,
    }


def prepare_one(volume: dict[str, Any], workdir: Path, context: StorageContext, **vmi_args: Any):
    return prepare_volumes(vmi(volume, **vmi_args), workdir, context)[volume["name"]]


def qemu_io(image: Path, fmt: str, command: str) -> str:
    done = subprocess.run(
        ["qemu-io", "-f", fmt, "-c", command, str(image)], capture_output=True, text=True, check=False
    )
    # qemu-io reports pattern mismatches on stdout and still exits 0 for some commands.
    assert done.returncode == 0, done.stderr or done.stdout
    assert "Pattern verification failed" not in done.stdout, done.stdout
    assert "failed" not in done.stderr.lower(), done.stderr
    return done.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def iso_label(path: Path) -> str:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        return iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()


def iso_joliet_files(path: Path) -> dict[str, bytes]:
    """Every file on the ISO by its Joliet path (the names Windows sees)."""
    return _iso_files(path, "joliet_path")


def iso_rock_ridge_files(path: Path) -> dict[str, bytes]:
    """Every file on the ISO by its Rock Ridge path (the names Linux sees)."""
    return _iso_files(path, "rr_path")


def _iso_files(path: Path, kind: str) -> dict[str, bytes]:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    files: dict[str, bytes] = {}
    try:
        for dirname, _dirs, names in iso.walk(**{kind: "/"}):
            for name in names:
                full = f"{dirname.rstrip('/')}/{name}"
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, **{kind: full})
                files[full] = out.getvalue()
    finally:
        iso.close()
    return files
