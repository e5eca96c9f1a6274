"""Commands a client node sends to its workers (over a pipe: frozen, picklable)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SetQps:
    """This worker's share of the host's shakes per second (0 pauses sending)."""

    qps: int
