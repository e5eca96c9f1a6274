"""At most one log line per interval for each kind of repeated problem."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """Logs a message of a given ``kind`` at most once per ``interval`` seconds.

    Messages held back are counted and the count is appended to the next line of that
    kind, so a sink that fails for every point still yields one readable line a second.
    """

    def __init__(self, logger: logging.Logger, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def log(self, kind: str, level: int, message: str | Callable[[], str]) -> bool:
        """Log ``message`` unless a line of this kind went out less than an interval ago.
        A callable is called only for a line that goes out (a message costly to make)."""
        now = self._clock()
        last = self._last_logged.get(kind)
        if last is not None and now - last < self._interval:
            self._held_back[kind] = self._held_back.get(kind, 0) + 1
            return False
        if callable(message):
            message = message()
        held_back = self._held_back.pop(kind, 0)
        if held_back and last is not None:
            message += f" ({held_back} more like this in the last {now - last:.0f} s)"
        self._logger.log(level, message)
        self._last_logged[kind] = now
        return True
