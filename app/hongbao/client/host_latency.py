"""A client node's per-host latency: it merges its workers' per-second histograms and
writes one ``latency`` point per second with the host's true percentiles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hongbao.metrics.histograms import (
    HISTOGRAM_FIELD,
    LATENCY_MEASUREMENT,
    encode,
    merge_encoded,
    percentiles,
)
from hongbao.metrics.lineprotocol import FieldValue, Point
from hongbao.metrics.pointfile import PointFile

GRACE_SECONDS = 3  # a second missing a worker's histogram is written this much later


def latency_file_name(host: str) -> str:
    return f"{LATENCY_MEASUREMENT}-{host}"


class HostLatency:
    """Collects ``(worker, second, encoded histogram)`` and emits each second once every
    worker has reported it, or GRACE_SECONDS after a later second arrived."""

    def __init__(self, run_dir: Path, host: str, run_id: str, workers: int,
                 phase: Callable[[], str]) -> None:
        self._file = PointFile(run_dir, latency_file_name(host))
        self._tags = {"host": host, "run_id": run_id}
        self._workers = workers
        self._phase = phase
        self._pending: dict[int, dict[int, str]] = {}
        self._last_written: int | None = None
        self.latest: dict[str, int] = percentiles(merge_encoded([]))

    def add(self, worker: int, second: int, encoded: str) -> None:
        if self._last_written is not None and second <= self._last_written:
            second = self._last_written + 1  # a worker's very last (partial) second
        self._pending.setdefault(second, {})[worker] = encoded
        self._write_ready(flush=False)

    def flush(self) -> None:
        """Write every second still waiting (the node is stopping)."""
        self._write_ready(flush=True)

    def _write_ready(self, flush: bool) -> None:
        if not self._pending:
            return
        newest = max(self._pending)
        points = []
        for second in sorted(self._pending):
            reported = self._pending[second]
            if not flush and len(reported) < self._workers and second > newest - GRACE_SECONDS:
                break
            del self._pending[second]
            points.append(self._point(second, reported))
        if points:
            self._file.write(points)
            self._last_written = points[-1].time

    def _point(self, second: int, reported: dict[int, str]) -> Point:
        merged = merge_encoded(reported.values())
        self.latest = percentiles(merged)
        fields: dict[str, FieldValue] = {
            **self.latest, "count": int(merged.get_total_count()), "workers": len(reported),
            HISTOGRAM_FIELD: encode(merged)}
        return Point(LATENCY_MEASUREMENT, {**self._tags, "phase": self._phase()}, fields, second)
