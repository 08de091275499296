"""A registry: the entries of one vocabulary (layers, losses, optimisers, schedules, initialisers), each declared once
with everything the stages need, found by name.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Colour:
...     name: str
>>> COLOURS = Registry[Colour]("colour")
>>> red = COLOURS.register(Colour("red"))
>>> COLOURS["red"] is red, "blue" in COLOURS, list(COLOURS)
(True, False, ['red'])
>>> COLOURS.register(Colour("red"))
Traceback (most recent call last):
...
ValueError: a colour named 'red' is registered already
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Registry[E: Named]:
    """Entries by name, in the order they were registered; a second entry with a name already taken is an error."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        if entry.name in self._entries:
            raise ValueError(f"a {self.kind} named {entry.name!r} is registered already")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a toy entry put things back with this)."""
        del self._entries[name]

    def __getitem__(self, name: str) -> E:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[E]:
        return list(self._entries.values())


REQUIRED = None  # the default of an argument that must be given


@dataclass(frozen=True)
class Argument:
    """One argument of a vocabulary entry: its name, its default (`REQUIRED`: none), whether it may be given by
    position, and what it holds, in words, for the language reference."""

    name: str
    default: object = REQUIRED
    positional: bool = True
    holds: str = "a number"


@dataclass(frozen=True)
class Signature:
    """The arguments of an entry, in order: how a call binds to them, and how the reference shows them.

    >>> Signature((Argument("lr0"), Argument("alpha", 10.0, positional=False))).text("annealed")
    'annealed(lr0, alpha = 10)'
    """

    arguments: tuple[Argument, ...] = ()

    @property
    def positional(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments if a.positional)

    @property
    def keywords(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments if not a.positional)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments if a.default is REQUIRED)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments)

    def default(self, name: str) -> object:
        return next(a.default for a in self.arguments if a.name == name)

    def text(self, name: str) -> str:
        shown = [a.name if a.default is REQUIRED else f"{a.name} = {_literal(a.default)}" for a in self.arguments]
        return f"{name}({', '.join(shown)})"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)
