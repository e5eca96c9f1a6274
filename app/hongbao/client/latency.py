"""One client worker's latency: an HdrHistogram per second, written to the worker's
HdrHistogram log and handed to the node (encoded) to merge into per-host percentiles."""

from __future__ import annotations

from pathlib import Path

from hongbao.metrics.histograms import HistogramLog, encode, new_histogram, percentiles, record


class LatencyRecorder:
    """Collects one second of latencies; ``take(second)`` logs, encodes and resets."""

    __slots__ = ("_histogram", "_log")

    def __init__(self, log_path: Path | None = None) -> None:
        self._histogram = new_histogram()
        self._log = HistogramLog(log_path) if log_path is not None else None

    def record(self, microseconds: int) -> None:
        record(self._histogram, microseconds)

    def take(self, second: int) -> tuple[dict[str, int], str]:
        """This worker's percentiles for ``second`` and its encoded histogram."""
        histogram = self._histogram
        if self._log is not None:
            self._log.write(second, histogram)
        fields = percentiles(histogram)
        encoded = encode(histogram)
        histogram.reset()
        return fields, encoded
