"""Per-second latency percentiles from an HdrHistogram, in microseconds."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000  # a minute: longer latencies are recorded as a minute
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"lat_p50_us": 50.0, "lat_p90_us": 90.0, "lat_p99_us": 99.0, "lat_p999_us": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


class LatencyRecorder:
    """Collects one second of latencies; ``take()`` returns the percentiles and resets."""

    __slots__ = ("_histogram",)

    def __init__(self) -> None:
        self._histogram = new_histogram()

    def record(self, microseconds: int) -> None:
        self._histogram.record_value(min(max(microseconds, LOWEST_US), HIGHEST_US))

    def take(self) -> dict[str, int]:
        histogram = self._histogram
        if histogram.get_total_count() == 0:
            fields = dict.fromkeys(PERCENTILES, 0)
            fields["lat_max_us"] = 0
            return fields
        fields = {
            name: histogram.get_value_at_percentile(pct) for name, pct in PERCENTILES.items()
        }
        fields["lat_max_us"] = histogram.get_max_value()
        histogram.reset()
        return fields
