"""Base for slotted cumulative counters: subclasses list their fields in ``__slots__``."""

from __future__ import annotations


class Counters:
    __slots__ = ()

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
