"""A spec the launcher cannot turn into a domain: every offending field, named."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecProblem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class UnsupportedSpec(ValueError):
    def __init__(self, problems: list[SpecProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class Problems:
    """Collects problems while converting, so the user sees all of them at once."""

    def __init__(self) -> None:
        self.items: list[SpecProblem] = []

    def add(self, field: str, reason: str) -> None:
        self.items.append(SpecProblem(field, reason))

    def unknown_keys(self, obj: dict, known: set[str], where: str) -> None:
        for key in sorted(set(obj) - known):
            self.add(f"{where}.{key}", "is not supported by kubevirt-py")

    def raise_if_any(self) -> None:
        if self.items:
            raise UnsupportedSpec(self.items)
