"""Kernel modules of an extracted (not installed) kernel package: which exist, which
are built in, and what each one needs loaded first.

Debian's kernel package ships no modules.dep (its postinst runs depmod on the
target system), and we never install the package, so dependencies are read from
each module's own .modinfo section ("depends=", "softdep=") - the data depmod
itself reads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


class ModuleError(LookupError):
    pass


@dataclass(frozen=True)
class Module:
    name: str  # canonical: '-' replaced by '_', as the kernel compares names
    path: str  # relative to the modules directory, e.g. kernel/fs/isofs/isofs.ko
    depends: tuple[str, ...]
    softdeps_pre: tuple[str, ...]


def canonical(name: str) -> str:
    return name.replace("-", "_")


class ModuleTree:
    """lib/modules/<version> of an extracted kernel package."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = root.name
        self._files: dict[str, str] = {}
        for path in sorted(root.joinpath("kernel").rglob("*.ko")):
            self._files[canonical(path.name[: -len(".ko")])] = str(path.relative_to(root))
        builtin = root / "modules.builtin"
        self.builtin: frozenset[str] = frozenset(
            canonical(Path(line.strip()).name.removesuffix(".ko"))
            for line in (builtin.read_text().splitlines() if builtin.exists() else [])
            if line.strip()
        )
        self._cache: dict[str, Module] = {}

    def is_modular(self, name: str) -> bool:
        return canonical(name) in self._files

    def is_builtin(self, name: str) -> bool:
        return canonical(name) in self.builtin

    def module(self, name: str) -> Module:
        key = canonical(name)
        if key not in self._cache:
            if key not in self._files:
                raise ModuleError(f"module {name} is neither built in nor a module of kernel {self.version}")
            rel = self._files[key]
            info = read_modinfo((self.root / rel).read_bytes())
            depends = tuple(canonical(d) for d in info.get("depends", "").split(",") if d)
            pre: list[str] = []
            for softdep in info.get("softdep", "").split("\0"):
                # "pre: a b post: c": only "pre" modules must precede this one.
                words, section = softdep.split(), None
                for word in words:
                    if word.endswith(":"):
                        section = word[:-1]
                    elif section == "pre":
                        pre.append(canonical(word))
            self._cache[key] = Module(key, rel, depends, tuple(pre))
        return self._cache[key]

    def load_order(self, wanted: list[str]) -> list[Module]:
        """The modules to insmod, dependencies first, for every wanted name that is not
        built in. A soft dependency that names no module (often a crypto alias such as
        "crypto-crc32c") is skipped: list the providing module in wanted instead."""
        order: list[Module] = []
        seen: set[str] = set()

        def visit(name: str, chain: tuple[str, ...]) -> None:
            key = canonical(name)
            if key in seen or self.is_builtin(key):
                return
            if key in chain:
                raise ModuleError(f"module dependency cycle: {' -> '.join(chain + (key,))}")
            module = self.module(key)
            for dep in module.softdeps_pre:
                if self.is_modular(dep):
                    visit(dep, chain + (key,))
            for dep in module.depends:
                visit(dep, chain + (key,))
            seen.add(key)
            order.append(module)

        for name in wanted:
            visit(name, ())
        return order


def read_modinfo(elf: bytes) -> dict[str, str]:
    """The key=value strings of a module's .modinfo section (ELF64 little-endian).

    A key given several times (softdep, alias) has its values joined with NUL."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ModuleError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", elf, shoff + index * shentsize)
        return name, offset, size

    _, names_off, _ = section(shstrndx)
    for index in range(shnum):
        name_at, offset, size = section(index)
        name = elf[names_off + name_at : elf.index(b"\0", names_off + name_at)]
        if name == b".modinfo":
            info: dict[str, str] = {}
            for item in elf[offset : offset + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    info[key] = f"{info[key]}\0{value}" if key in info else value
            return info
    raise ModuleError("no .modinfo section")
