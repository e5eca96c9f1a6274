"""How many worker processes a target needs, given the per-process open-files limit."""

from __future__ import annotations

import math
import resource

FD_RESERVE = 200  # listeners, pipes, log and metric files, the control API


def fd_limit() -> int:
    """This process's open-files limit (the soft one, which is what accept() hits)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connections_per_worker(limit: int | None = None) -> int:
    limit = fd_limit() if limit is None else limit
    if limit <= FD_RESERVE:
        raise ValueError(f"open-files limit {limit} leaves no room for connections")
    return limit - FD_RESERVE


def workers_for(connections: int, limit: int | None = None, minimum: int = 1) -> int:
    """The fewest workers that hold ``connections`` within the fd limit."""
    return max(minimum, math.ceil(connections / connections_per_worker(limit)))


def raise_soft_limit() -> None:
    """Lift the soft open-files limit to the hard one (never beyond it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
