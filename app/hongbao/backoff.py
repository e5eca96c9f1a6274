"""The one backoff rule: capped exponential, with optional jitter to spread retries."""

from __future__ import annotations

import random


def capped_exponential(attempt: int, first: float, cap: float) -> float:
    """``first``, 2 x ``first``, 4 x ``first``, ... for attempts 1, 2, 3, ...; at most ``cap``."""
    return min(cap, first * 2 ** max(0, attempt - 1))


def jittered(delay: float, rng: random.Random) -> float:
    """``delay`` spread uniformly over [0.5, 1.5) x ``delay``: retries that failed together
    do not come back together."""
    return delay * (0.5 + rng.random())
