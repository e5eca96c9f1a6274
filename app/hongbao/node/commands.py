"""Commands every worker takes from its node, whatever its role. They cross a pipe, so
they are small frozen dataclasses that pickle."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stop:
    """Drain and exit."""


@dataclass(frozen=True)
class SetPhase:
    name: str
