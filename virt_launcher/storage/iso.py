"""ISO9660 images of small file trees (cloud-init data, ConfigMaps, Secrets).

Names keep their case and punctuation through Rock Ridge (what Linux reads) and
Joliet (what Windows and cloudbase-init read); the plain ISO9660 names underneath
are only a fallback, so they are squeezed into 8.3 upper-case form, unique per
directory.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from virt_launcher.storage.workdir import discard, publish, temporary_sibling

# The volume identifier is a 32-byte field in the primary volume descriptor.
MAX_LABEL = 32
# Joliet file identifiers hold at most 64 UCS-2 characters.
_JOLIET_MAX = 64
_ISO_CHARS = re.compile(r"[^A-Z0-9_]")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")

if TYPE_CHECKING:
    import pycdlib


def valid_label(label: str) -> bool:
    return bool(_LABEL.match(label))


def write_iso(path: Path, label: str, files: Mapping[str, bytes]) -> None:
    """Write files (relative "dir/name" -> content) as an ISO labelled label, atomically."""
    # Imported here: pycdlib costs every launcher 5 MiB, and most never write an ISO.
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=label, joliet=3, rock_ridge="1.09")
    names = _NameTable()
    for relative in sorted(files):
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            names.directory(iso, parts[:depth])
        content = files[relative]
        iso_path, joliet_path = names.file(parts)
        iso.add_fp(io.BytesIO(content), len(content), iso_path, rr_name=parts[-1], joliet_path=joliet_path)
    temp = temporary_sibling(path)
    try:
        iso.write(str(temp))
        publish(temp, path)
    finally:
        iso.close()
        discard(temp)


class _NameTable:
    """Maps each real path component to its ISO9660 and Joliet names, unique per directory."""

    def __init__(self) -> None:
        self._iso: dict[tuple[str, ...], str] = {(): ""}
        self._joliet: dict[tuple[str, ...], str] = {(): ""}
        self._taken_iso: dict[tuple[str, ...], set[str]] = {}
        self._taken_joliet: dict[tuple[str, ...], set[str]] = {}

    def directory(self, iso: pycdlib.PyCdlib, parts: list[str]) -> None:
        key = tuple(parts)
        if key in self._iso:
            return
        iso_name, joliet_name = self._names(key, is_file=False)
        iso.add_directory(iso_path=iso_name, rr_name=parts[-1], joliet_path=joliet_name)

    def file(self, parts: list[str]) -> tuple[str, str]:
        iso_name, joliet_name = self._names(tuple(parts), is_file=True)
        return iso_name + ";1", joliet_name

    def _names(self, key: tuple[str, ...], is_file: bool) -> tuple[str, str]:
        parent = key[:-1]
        iso_name = _unique(_iso_component(key[-1], is_file), self._taken_iso.setdefault(parent, set()))
        joliet_name = _unique_joliet(key[-1], self._taken_joliet.setdefault(parent, set()))
        self._iso[key] = f"{self._iso[parent]}/{iso_name}"
        self._joliet[key] = f"{self._joliet[parent]}/{joliet_name}"
        return self._iso[key], self._joliet[key]


def _iso_component(name: str, is_file: bool) -> str:
    stem, dot, ext = name.rpartition(".") if is_file else (name, "", "")
    if not dot or not stem:
        stem, ext = name, ""
    stem = _ISO_CHARS.sub("_", stem.upper())[:8] or "_"
    ext = _ISO_CHARS.sub("_", ext.upper())[:3]
    # Level 1 file identifiers always carry the separator dot, even without extension.
    return f"{stem}.{ext}" if is_file else stem


def _unique(candidate: str, taken: set[str]) -> str:
    stem, dot, ext = candidate.partition(".")
    counter = 0
    while candidate in taken:
        counter += 1
        suffix = str(counter)
        candidate = f"{stem[: 8 - len(suffix)]}{suffix}{dot}{ext}"
    taken.add(candidate)
    return candidate


def _unique_joliet(name: str, taken: set[str]) -> str:
    candidate = name[:_JOLIET_MAX]
    counter = 0
    while candidate in taken:
        counter += 1
        suffix = f"~{counter}"
        candidate = name[: _JOLIET_MAX - len(suffix)] + suffix
    taken.add(candidate)
    return candidate
