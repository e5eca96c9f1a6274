"""What a client host did since its rate last changed: counter deltas and the merged
latency histogram of the whole seconds since. The knee search reads it from ``/status``
at the end of each step and merges the hosts' histograms (``hongbao knee verdict``)."""

from __future__ import annotations

import time
from typing import Any

from hongbao.metrics.histograms import encode, merge_encoded, new_histogram

WINDOW_COUNTERS = ("requests", "responses", "timeouts", "send_skipped")


class LoadWindow:
    def __init__(self) -> None:
        self._histogram = new_histogram()
        self._since = time.time()
        self._qps = 0
        self._baseline: dict[str, int] = {}

    def restart(self, qps: int, counters: dict[str, int]) -> None:
        """A new rate from the next second on: the window starts there."""
        self._histogram = new_histogram()
        self._since = float(int(time.time()) + 1)
        self._qps = qps
        self._baseline = {name: counters.get(name, 0) for name in WINDOW_COUNTERS}

    def add_second(self, second: int, encoded: str) -> None:
        """One worker's histogram of ``second``; seconds before the window are left out."""
        if second >= self._since:
            self._histogram.add(merge_encoded([encoded]))

    def as_status(self, counters: dict[str, int]) -> dict[str, Any]:
        return {
            "qps": self._qps,
            "since": self._since,
            "seconds": max(0.0, time.time() - self._since),
            **{name: counters.get(name, 0) - self._baseline.get(name, 0)
               for name in WINDOW_COUNTERS},
            "histogram": encode(self._histogram),
        }
