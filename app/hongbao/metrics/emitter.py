"""Turns cumulative counters into one point per second, with no gaps."""

from __future__ import annotations

from collections.abc import Mapping

from hongbao.metrics.lineprotocol import FieldValue, Point
from hongbao.metrics.pointfile import PointFile


class PerSecondEmitter:
    """Emits one point per second for one measurement of one process.

    Counters are cumulative totals and are written as per-second deltas; gauges (such as
    ``connections``) are written as they are. If the caller skipped seconds (a stalled
    loop), the missing seconds get zero-delta points, so every second has a point.
    """

    def __init__(
        self,
        sink: PointFile,
        measurement: str,
        tags: Mapping[str, str],
        gauges: frozenset[str] = frozenset(),
    ) -> None:
        self._sink = sink
        self._measurement = measurement
        self.tags = dict(tags)
        self._gauges = gauges
        self._previous: dict[str, int] = {}
        self._last_second: int | None = None

    def emit(
        self, second: int, totals: Mapping[str, int], extra: Mapping[str, FieldValue] = {}
    ) -> dict[str, FieldValue]:
        """Write the point for ``second``; returns its fields."""
        if self._last_second is not None and second <= self._last_second:
            return {}
        points = []
        if self._last_second is not None:
            zeros = {k: (v if k in self._gauges else 0) for k, v in self._previous.items()}
            for skipped in range(self._last_second + 1, second):
                points.append(Point(self._measurement, dict(self.tags), dict(zeros), skipped))
        fields: dict[str, FieldValue] = {
            key: value if key in self._gauges else value - self._previous.get(key, 0)
            for key, value in totals.items()
        }
        fields.update(extra)
        points.append(Point(self._measurement, dict(self.tags), fields, second))
        self._previous = dict(totals)
        self._last_second = second
        self._sink.write(points)  # if it raises, the points are still counted as emitted
        return fields
