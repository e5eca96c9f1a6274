"""What a client host did since its rate last changed: the counters and the merged latency
histogram of the whole seconds since. The knee search reads it from ``/status`` at the end
of each step and merges the hosts' histograms (``hongbao knee verdict``)."""

from __future__ import annotations

import time
from typing import Any

from hongbao.metrics.histograms import encode, merge_encoded, new_histogram

WINDOW_COUNTERS = ("requests", "responses", "timeouts", "send_skipped")
# The window starts this many whole seconds after the change: a worker may get the new
# rate just after the next second began (the pipe), and applies it from the one after.
SETTLE_SECONDS = 2


class LoadWindow:
    """Fed every worker's per-second status; sums the whole seconds from SETTLE_SECONDS
    after the last rate change on."""

    def __init__(self) -> None:
        self._histogram = new_histogram()
        self._since = int(time.time()) + 1
        self._qps = 0
        self._sums = dict.fromkeys(WINDOW_COUNTERS, 0)
        self._seconds: set[int] = set()
        self._previous: dict[int, dict[str, int]] = {}  # worker -> its last counters

    def restart(self, qps: int) -> None:
        self._histogram = new_histogram()
        self._since = int(time.time()) + SETTLE_SECONDS
        self._qps = qps
        self._sums = dict.fromkeys(WINDOW_COUNTERS, 0)
        self._seconds = set()

    def add_status(self, worker: int, second: int, counters: dict[str, int],
                   encoded: str | None) -> None:
        """One worker's tick of ``second``: its cumulative counters and its histogram."""
        previous = self._previous.get(worker)
        self._previous[worker] = counters
        if second < self._since:
            return
        self._seconds.add(second)
        if encoded is not None:
            self._histogram.add(merge_encoded([encoded]))
        for name in WINDOW_COUNTERS:
            before = previous.get(name, 0) if previous else 0
            now = counters.get(name, 0)
            self._sums[name] += now - before if now >= before else now  # a restarted worker

    def as_status(self) -> dict[str, Any]:
        return {"qps": self._qps, "since": self._since, "seconds": len(self._seconds),
                **self._sums, "histogram": encode(self._histogram)}
