"""What a client host did since its rate last changed: the counters and the merged latency
histogram of the whole seconds since. The knee search reads it from ``/status`` at the end
of each step, bounded to the step's held seconds (``window_since``, ``window_until``), and
merges the hosts' histograms (``hongbao knee verdict``)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hongbao.metrics.histograms import add_encoded, encode, merge_encoded, new_histogram

WINDOW_COUNTERS = ("requests", "responses", "timeouts", "send_skipped")
# The window starts this many whole seconds after the change: a worker may get the new
# rate just after the next second began (the pipe), and applies it from the one after.
SETTLE_SECONDS = 2
# Seconds kept one by one, so that a read can be bounded to some of them: a knee step's
# hold is read after it ended, and the read itself loads a small box.
KEPT_SECONDS = 600


@dataclass
class _Second:
    """Every worker's share of one second: counter increments and encoded histograms."""

    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WINDOW_COUNTERS, 0))
    histograms: list[str] = field(default_factory=list)
    folded: int = 0  # how many of the histograms are already in the whole window's


class LoadWindow:
    """Fed every worker's per-second status; sums the whole seconds from SETTLE_SECONDS
    after the last rate change on, and keeps the last KEPT_SECONDS of them one by one.

    The whole window's histogram is merged lazily and once: each second's histograms are
    folded into it when a read needs them or the second is dropped, never again. (Merged
    afresh on each /status, a full window cost a client node about a second of CPU per
    read: 1,800 histograms at 0.1-0.6 ms to decode, on every progress poll of phase 1.)"""

    def __init__(self) -> None:
        self._previous: dict[int, dict[str, int]] = {}  # worker -> its last counters
        self._start(qps=0, since=int(time.time()) + 1)

    def restart(self, qps: int) -> None:
        self._start(qps, since=int(time.time()) + SETTLE_SECONDS)

    def _start(self, qps: int, since: int) -> None:
        self._since = since
        self._qps = qps
        self._seconds: dict[int, _Second] = {}
        self._order: deque[int] = deque()  # the kept seconds, in the order first seen
        self._dropped = 0  # seconds of the window no longer kept one by one
        self._dropped_sums = dict.fromkeys(WINDOW_COUNTERS, 0)
        self._whole = new_histogram()  # every second's histograms folded so far

    def add_status(self, worker: int, second: int, counters: dict[str, int],
                   encoded: str | None) -> None:
        """One worker's tick of ``second``: its cumulative counters and its histogram."""
        previous = self._previous.get(worker)
        self._previous[worker] = counters
        if second < self._since:
            return
        entry = self._seconds.get(second)
        if entry is None:
            entry = self._seconds[second] = _Second()
            self._order.append(second)
            if len(self._order) > KEPT_SECONDS:
                self._drop(self._order.popleft())
        if encoded is not None:
            entry.histograms.append(encoded)
        for name in WINDOW_COUNTERS:
            before = previous.get(name, 0) if previous else 0
            now = counters.get(name, 0)
            entry.sums[name] += now - before if now >= before else now  # a restarted worker

    def _fold(self, entry: _Second) -> None:
        add_encoded(self._whole, entry.histograms[entry.folded:])
        entry.folded = len(entry.histograms)

    def _drop(self, second: int) -> None:
        entry = self._seconds.pop(second)
        self._fold(entry)
        self._dropped += 1
        for name in WINDOW_COUNTERS:
            self._dropped_sums[name] += entry.sums[name]

    def as_status(self, since: int | None = None, until: int | None = None) -> dict[str, Any]:
        """The window: every second since the change, or only the kept seconds ``s`` with
        ``since <= s < until`` when either bound is given (``since`` reports where the
        seconds counted begin)."""
        bounded = since is not None or until is not None
        first = max(self._since, since or 0)
        seconds = [s for s in self._seconds if first <= s and (until is None or s < until)]
        sums = dict.fromkeys(WINDOW_COUNTERS, 0)
        for s in seconds:
            for name in WINDOW_COUNTERS:
                sums[name] += self._seconds[s].sums[name]
        if bounded:
            first = max(first, min(self._order, default=first))
            histogram = merge_encoded(text for s in seconds
                                      for text in self._seconds[s].histograms)
        else:
            for s in seconds:
                self._fold(self._seconds[s])
            histogram = self._whole
            for name in WINDOW_COUNTERS:
                sums[name] += self._dropped_sums[name]
        return {"qps": self._qps, "since": first,
                "seconds": len(seconds) + (0 if bounded else self._dropped),
                **sums, "histogram": encode(histogram)}
