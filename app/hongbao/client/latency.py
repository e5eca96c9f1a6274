"""One client worker's latency: an HdrHistogram per second, written to the worker's
HdrHistogram log and handed to the node (encoded) to merge into per-host percentiles."""

from __future__ import annotations

from pathlib import Path

from hongbao.metrics.histograms import HistogramLog, encode, new_histogram, record


class LatencyRecorder:
    """Collects one second of latencies; ``take(second)`` logs, encodes and resets."""

    __slots__ = ("_histogram", "_log")

    def __init__(self, log_path: Path | None = None) -> None:
        self._histogram = new_histogram()
        self._log = HistogramLog(log_path) if log_path is not None else None

    def record(self, microseconds: int) -> None:
        record(self._histogram, microseconds)

    def take(self, second: int) -> str:
        """Log ``second``'s histogram and return it encoded; start the next one. (No
        percentiles here: they cost a worker ~7 ms a second, and only merged ones count.)"""
        histogram = self._histogram
        encoded = encode(histogram)
        if self._log is not None:
            self._log.write(second, histogram, encoded)
        self._histogram = new_histogram()  # cheaper than reset()
        return encoded
