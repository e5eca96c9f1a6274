"""Who sends in second ``t``: the original rule ``t % P == perm(u) % P`` (DESIGN §4).

With ``U`` users and ``Q`` requests per second the period is ``P = U / Q``. When ``P`` is
whole, user ``u`` sends in every second ``t`` with ``t % P == perm(u) % P``. When it is not,
a window of ``Q`` positions slides over the permuted ids, so every second has exactly ``Q``
senders and each user sends once per pass over all ``U`` positions.

``perm`` is the multiplicative permutation ``perm(u) = a * u mod U``. It spreads
neighbouring ids (``a`` is near ``U`` times the golden ratio) and, when ``P`` is whole,
``a % P == 1``, so the rule is exactly the famous ``t % P == u % P``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

GOLDEN_RATIO_FRACTION = 0.6180339887498949
STEP_ROUNDING = 1e-6  # of a step: what float rounding of a time may take off


def _multiplier(users: int, period: int | None) -> int:
    """The smallest ``a`` at or above ``golden * users`` that is coprime with ``users``
    and, for a whole period, congruent to 1 modulo it."""
    if users <= 2:
        return 1
    a = max(1, int(users * GOLDEN_RATIO_FRACTION))
    while True:
        if math.gcd(a, users) == 1 and (period is None or a % period == 1 % period):
            return a
        a += 1


@dataclass(frozen=True)
class Pacer:
    """Schedule for ``users`` local users at ``qps`` requests per second."""

    users: int
    qps: int
    _period: int | None = field(init=False, repr=False)
    _mult: int = field(init=False, repr=False)
    _inverse: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.users < 0 or self.qps < 0:
            raise ValueError(f"users ({self.users}) and qps ({self.qps}) must be >= 0")
        period = self.users // self.qps if self.qps and self.users % self.qps == 0 else None
        mult = _multiplier(self.users, period)
        object.__setattr__(self, "_period", period)
        object.__setattr__(self, "_mult", mult)
        object.__setattr__(self, "_inverse", pow(mult, -1, self.users) if self.users > 1 else 0)

    @property
    def sends_per_second(self) -> int:
        """Exactly ``min(qps, users)``: nobody sends twice in one second."""
        return min(self.qps, self.users)

    @property
    def period(self) -> float:
        """Seconds between two sends of the same user (``U / Q``)."""
        return self.users / self.qps if self.qps else math.inf

    def perm(self, user: int) -> int:
        return (self._mult * user) % self.users if self.users else 0

    def user_at(self, position: int) -> int:
        """Inverse of ``perm``: the user at a permuted position."""
        return (self._inverse * position) % self.users if self.users > 1 else 0

    def sends_in(self, user: int, t: int) -> bool:
        if not self.qps or not self.users:
            return False
        if self.qps >= self.users:
            return True
        if self._period is not None:
            return t % self._period == self.perm(user) % self._period
        start = (t * self.qps) % self.users
        offset = (self.perm(user) - start) % self.users
        return offset < self.qps

    def senders(self, t: int) -> list[int]:
        """Local user indices that send in second ``t``, in permuted order."""
        if not self.qps or not self.users:
            return []
        if self.qps >= self.users:
            return list(range(self.users))
        if self._period is not None:
            positions = range(t % self._period, self.users, self._period)
        else:
            start = (t * self.qps) % self.users
            positions = (
                (start + i) % self.users for i in range(self.qps)
            )  # window wraps around
        user_at = self.user_at
        return [user_at(p) for p in positions]


@dataclass(frozen=True)
class StepGrid:
    """Steps of ``1 / per_second`` seconds, each ``offset`` seconds after a whole step
    (``0 <= offset < step``). One second's items go out in its ``per_second`` steps, in
    even batches; item ``i`` of ``count`` is intended at the start of its step."""

    per_second: int
    offset: float = 0.0

    def __post_init__(self) -> None:
        if self.per_second < 1 or not 0 <= self.offset < self.step:
            raise ValueError(f"per_second ({self.per_second}) must be >= 1 and offset "
                             f"({self.offset}) within one step")

    @classmethod
    def spread(cls, per_second: int, ordinal: int) -> StepGrid:
        """The grid of the worker with this ordinal (its place among all workers): the
        offsets of ordinals 0, 1, 2, ... fall evenly over the step (by the golden ratio),
        so many workers' steps do not all fire at once."""
        return cls(per_second, (ordinal * GOLDEN_RATIO_FRACTION) % 1 / per_second)

    @property
    def step(self) -> float:
        return 1 / self.per_second

    def next_after(self, now: float) -> float:
        """The start of the first step after ``now``."""
        second = math.floor(now)
        return second + self.offset + self._begun(second, now) / self.per_second

    def _begun(self, second: int, now: float) -> int:
        """How many of second ``second``'s steps have begun by ``now`` (below 0 or above
        ``per_second`` outside it). A step that begins within float rounding of ``now``
        counts as begun."""
        return math.floor((now - second - self.offset) * self.per_second + STEP_ROUNDING) + 1

    def due(self, second: int, now: float, count: int) -> int:
        """How many of second ``second``'s ``count`` items are due by ``now``: those of
        the steps begun (all of them from the last step's start on)."""
        begun = min(self.per_second, max(0, self._begun(second, now)))
        return -(-begun * count // self.per_second)

    def intended(self, second: int, i: int, count: int) -> float:
        """When item ``i`` of second ``second``'s ``count`` is meant to go out."""
        return second + self.offset + (i * self.per_second // count) / self.per_second


def split_rate(total: float, parts: int) -> list[float]:
    """Split a rate evenly among ``parts`` workers."""
    return [total / parts] * parts if parts else []


def split_count(total: int, parts: int) -> list[int]:
    """Split an integer among ``parts`` so the pieces differ by at most one and sum to it."""
    if parts <= 0:
        return []
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class SteadyRate:
    """Releases ``total`` items at ``rate`` per second, evenly, from ``started_at``.

    ``due(now)`` returns how many more items are due by ``now``; the sum of all ``due``
    calls never exceeds ``total``. A rate of 0 releases nothing. With ``limit``, one call
    releases at most that many; a caller that fell further behind slips its schedule
    instead of catching up in one burst. ``retune`` changes the rate from ``now`` on,
    keeping the total and what was released.
    """

    __slots__ = ("_origin_count", "_origin_time", "rate", "released", "started_at", "total")

    def __init__(self, rate: float, total: int, started_at: float) -> None:
        if rate < 0 or total < 0:
            raise ValueError(f"rate ({rate}) and total ({total}) must be >= 0")
        self.rate = rate
        self.total = total
        self.started_at = started_at
        self.released = 0
        self._origin_count = 1  # the first item is due at once
        self._origin_time = started_at

    @property
    def done(self) -> bool:
        return self.released >= self.total

    def due(self, now: float, limit: int | None = None) -> int:
        if self.rate <= 0 or self.done:
            return 0
        scheduled = self._origin_count + int((now - self._origin_time) * self.rate)
        count = max(0, min(self.total, scheduled) - self.released)
        if limit is not None and count > limit:
            count = limit
            self._rebase(now, self.released + count)
        self.released += count
        return count

    def retune(self, rate: float, now: float) -> None:
        if rate < 0:
            raise ValueError(f"rate ({rate}) must be >= 0")
        self.rate = rate
        self._rebase(now, self.released)

    def _rebase(self, now: float, count: int) -> None:
        self._origin_count = count
        self._origin_time = now
