"""How many connects a client worker keeps in flight at once, by TCP's rule: additive
increase, multiplicative decrease. A login answered promptly widens the window by one; a
slow login, a login timeout or a connect timeout halves it, at most once a second. A server
that falls behind then sees fewer attempts, instead of retries piled on timeouts (at 1M
connections a fixed 2,000 per host left 34,000 logins queued, most of them timed out, and
the connect rate collapsed to 400/s)."""

from __future__ import annotations

import math

INITIAL = 64  # connects in flight per worker at first; prompt logins double it per round trip
FLOOR = 8  # never fewer in flight than this
CUT_EVERY_S = 1.0  # one halving per second, however many timeouts arrive together


class ConnectWindow:
    def __init__(self, limit: int, slow_login_s: float) -> None:
        self.limit = max(1, limit)
        self.slow_login_s = slow_login_s
        self._size = float(min(INITIAL, self.limit))
        self._cut_at = -math.inf
        self.cuts = 0

    @property
    def size(self) -> int:
        return int(self._size)

    def logged_in(self, round_trip_s: float, now: float) -> None:
        if round_trip_s > self.slow_login_s:
            self.congested(now)
        else:
            self._size = min(float(self.limit), self._size + 1)

    def congested(self, now: float) -> None:
        """A connect or login timed out (or a login was slow): the server is behind."""
        if now - self._cut_at >= CUT_EVERY_S:
            self._size = max(float(min(FLOOR, self.limit)), self._size / 2)
            self._cut_at = now
            self.cuts += 1
