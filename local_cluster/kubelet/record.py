"""Immutable values with named fields, equal by value: what a frozen dataclass gives,
without importing dataclasses (and inspect, ast, ...) into the sandbox trampoline,
which starts before every container's command.

A subclass names its fields in __slots__ (in constructor order) and their defaults, if
any, in _DEFAULTS.
"""

from __future__ import annotations


class Record:
    """An immutable value with named fields, equal by value (a frozen dataclass, lighter)."""

    __slots__: tuple[str, ...] = ()
    _DEFAULTS: dict[str, object] = {}

    def __init__(self, *args: object, **fields: object) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments")
        given = dict(zip(names, args))
        for name, value in fields.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            if name in given:
                raise TypeError(f"{type(self).__name__} got {name!r} twice")
            given[name] = value
        for name in names:
            if name not in given:
                if name not in self._DEFAULTS:
                    raise TypeError(f"{type(self).__name__} needs {name!r}")
                default = self._DEFAULTS[name]
                # Mutable defaults are copied, as dataclasses' default_factory would.
                given[name] = list(default) if isinstance(default, list) else default
            object.__setattr__(self, name, given[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name}")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def fields(self) -> dict[str, object]:
        """Field name -> value, in declaration order."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self.fields().items())
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[type[Record], tuple[object, ...]]:
        # copy and pickle rebuild through __init__: they would otherwise set slots one by one.
        return type(self), self._values()
