"""Commands a server node sends to its workers (over a pipe: frozen, picklable)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SetShakeRate:
    """Generate ``total`` shake packets at ``qps`` from now on."""

    qps: float
    total: int


@dataclass(frozen=True)
class SetSendRate:
    """Send ``total`` packets at ``qps`` to users drawn from ``min_uid``..``max_uid``."""

    qps: float
    total: int
    min_uid: int
    max_uid: int


@dataclass(frozen=True)
class Retune:
    """Change the rate of a running generator (``shake`` or ``send``), keeping its total."""

    generator: str
    qps: float


@dataclass(frozen=True)
class SkipIds:
    """A restarted worker starts its packet ids past any its predecessor may have used."""

    shake_floor: int
    send_floor: int
