"""A node lifts its own open-files limit before it starts workers, which inherit it."""

from __future__ import annotations

import resource


def raise_soft_limit() -> None:
    """Lift the soft open-files limit to the hard one (never beyond it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
