"""Latency histograms: one HdrHistogram per second, their standard log files
(``latency/<host>-w<N>.hlog``), their text encoding, merging and percentiles (µs)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from functools import cache
from itertools import accumulate
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader, HistogramLogWriter

LOWEST_US = 1
HIGHEST_US = 60_000_000  # a minute: longer latencies are recorded as a minute
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"lat_p50_us": 50.0, "lat_p90_us": 90.0, "lat_p99_us": 99.0, "lat_p999_us": 99.9}
LATENCY_FIELDS = (*PERCENTILES, "lat_max_us")
# A client host's merged latency: one point per second, with the encoded histogram.
LATENCY_MEASUREMENT = "latency"
HISTOGRAM_FIELD = "histogram"
MAX_VALUE_UNIT_RATIO = 1000.0  # µs -> ms in the log's "max" column


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(histogram: HdrHistogram, microseconds: int) -> None:
    histogram.record_value(min(max(microseconds, LOWEST_US), HIGHEST_US))


@cache
def _empty_encoded() -> str:
    return new_histogram().encode().decode("ascii")


def encode(histogram: HdrHistogram) -> str:
    """The histogram's standard compressed text. An empty one (a worker's second with no
    answers: all of phase 1) is always the same text, made once."""
    if histogram.get_total_count() == 0:
        return _empty_encoded()
    return histogram.encode().decode("ascii")


def merge(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    merged = new_histogram()
    for histogram in histograms:
        merged.add(histogram)
    return merged


def merge_encoded(encoded: Iterable[str]) -> HdrHistogram:
    merged = new_histogram()
    add_encoded(merged, encoded)
    return merged


def add_encoded(histogram: HdrHistogram, encoded: Iterable[str]) -> None:
    """Decode and add each text; an empty histogram's adds nothing and is skipped (its
    decoding cost 0.6 ms, more than a full one's)."""
    empty = _empty_encoded()
    for text in encoded:
        if text != empty:
            histogram.decode_and_add(text)


def percentiles(histogram: HdrHistogram) -> dict[str, int]:
    """lat_p50_us ... lat_p999_us and lat_max_us; all zero for an empty histogram.

    The same values as HdrHistogram's get_value_at_percentile, in one pass: the counts up
    to the maximum are summed in C (itertools.accumulate) and each percentile's target
    count is found by bisection. hdrh walks all 17,408 buckets in Python once per
    percentile, ~7 ms for these four on this box, which every client node paid each
    second on the top of the second, ahead of its niced workers."""
    if histogram.get_total_count() == 0:
        return dict.fromkeys(LATENCY_FIELDS, 0)
    top = histogram.get_counts_array_index(histogram.get_max_value())
    cumulative = list(accumulate(histogram.counts[:top + 1]))
    fields = {}
    for name, pct in PERCENTILES.items():
        index = bisect_left(cumulative, histogram.get_target_count_at_percentile(pct))
        value = histogram.get_value_from_index(min(index, top))
        fields[name] = int(histogram.get_highest_equivalent_value(value))
    fields["lat_max_us"] = int(histogram.get_max_value())
    return fields


def latency_dir(run_dir: Path) -> Path:
    return run_dir / "latency"


def log_path(run_dir: Path, host: str, worker: int) -> Path:
    return latency_dir(run_dir) / f"{host}-w{worker}.hlog"


class HistogramLog:
    """Appends one interval histogram per second to a standard HdrHistogram log."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", encoding="ascii")
        self._writer = HistogramLogWriter(self._file)
        if fresh:
            self._writer.output_comment(f"hongbao latency of {path.stem}, microseconds, "
                                        "one interval per second")
            self._writer.output_legend()

    def write(self, second: int, histogram: HdrHistogram, encoded: str | None = None) -> None:
        """One interval line, as hdrh's HistogramLogWriter.output_interval_histogram writes
        it; ``encoded`` (the histogram's encode()) spares encoding it a second time."""
        self._file.write(f"{second:f},{1:f},{histogram.get_max_value() // MAX_VALUE_UNIT_RATIO:f},"
                         f"{encoded if encoded is not None else encode(histogram)}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_log(path: Path) -> Iterator[tuple[int, HdrHistogram]]:
    """(second, histogram) for every interval of one log file."""
    reader = HistogramLogReader(str(path), new_histogram())
    try:
        while (histogram := reader.get_next_interval_histogram()) is not None:
            yield round(histogram.get_start_time_stamp() / 1000), histogram
    finally:
        reader.close()


def per_second(intervals: Iterable[tuple[int, HdrHistogram]]) -> dict[int, HdrHistogram]:
    """Merge intervals that share a second (several workers, several hosts)."""
    merged: dict[int, HdrHistogram] = {}
    for second, histogram in intervals:
        if second not in merged:
            merged[second] = new_histogram()
        merged[second].add(histogram)
    return merged


def run_dir_logs(run_dir: Path) -> Iterator[tuple[int, HdrHistogram]]:
    for path in sorted(latency_dir(run_dir).glob("*.hlog")):
        yield from read_log(path)
