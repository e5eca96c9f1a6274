"""Per-second series of a run, summed over workers and hosts, with its phase spans."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from hongbao.metrics.histograms import (
    HISTOGRAM_FIELD,
    LATENCY_FIELDS,
    LATENCY_MEASUREMENT,
    add_encoded,
    merge,
    new_histogram,
    percentiles,
)
from hongbao.metrics.lineprotocol import Point

LATENCY_PREFIX = "lat_"
CLOCK_MEASUREMENT = "clock"  # hongbao clock record (hongbao/clocks.py)

NODE_MEASUREMENT = "node"  # per node and second: workers, restarts, rss_kb


@dataclass(frozen=True)
class PhaseSpan:
    name: str
    start: int
    end: int  # exclusive
    target_qps: int
    hold_start: int | None = None  # the held-rate window [hold_start, hold_end), if marked
    hold_end: int | None = None
    target_connections: int | None = None

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def hold(self) -> PhaseSpan:
        """The held-rate window, or the whole phase when no hold was marked."""
        if self.hold_start is None:
            return self
        end = self.hold_end if self.hold_end is not None else self.end
        return PhaseSpan(self.name, self.hold_start, max(end, self.hold_start),
                         self.target_qps)


@dataclass
class RunSeries:
    """``server`` and ``client`` map a field to its per-second sum over every worker;
    ``histograms`` holds each second's latency histogram merged over every client worker
    of every host, and ``latency`` its percentile fields per second."""

    run_id: str
    seconds: list[int]
    server: dict[str, list[float]]
    client: dict[str, list[float]]
    latency: dict[str, list[float]]
    phases: list[PhaseSpan]
    histograms: dict[int, HdrHistogram] = field(default_factory=dict)
    clock_offsets_ms: dict[str, float] = field(default_factory=dict)  # host -> first offset
    hosts: dict[str, list[str]] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)
    rss_kb: dict[str, dict[int, float]] = field(default_factory=dict)  # role -> second -> KB
    # role -> second -> workers running but not ticking lately (starved: a saturated worker
    # serves its backlog before it ticks, so its counts land seconds late)
    late_workers: dict[str, dict[int, float]] = field(default_factory=dict)

    def total(self, side: str, name: str, span: PhaseSpan | None = None) -> float:
        values = getattr(self, side).get(name, [])
        return sum(self.window(values, span))

    def window(self, values: list[float], span: PhaseSpan | None) -> list[float]:
        if span is None or not self.seconds:
            return values
        first = self.seconds[0]
        return values[max(0, span.start - first): max(0, span.end - first)]

    def most_late_workers(self, role: str, span: PhaseSpan) -> int:
        """The most workers of ``role`` running but not ticking in any one second of ``span``."""
        by_second = self.late_workers.get(role, {})
        return int(max((n for t, n in by_second.items() if span.start <= t < span.end),
                       default=0))

    def merged_latency(self, span: PhaseSpan) -> HdrHistogram:
        return merge(h for t, h in self.histograms.items() if span.start <= t < span.end)


def _phase_spans(events: list[Point], last_second: int) -> list[PhaseSpan]:
    """Spans from start/end marks; hold_start/hold_end marks between them set the hold."""
    open_: dict[str, dict[str, int]] = {}
    spans: list[PhaseSpan] = []

    def close(name: str, end: int) -> None:
        marks = open_.pop(name)
        spans.append(PhaseSpan(
            name, marks["start"], max(end, marks["start"] + 1), marks["target_qps"],
            marks.get("hold_start"), marks.get("hold_end"), marks.get("target_connections")))

    for point in sorted(events, key=lambda p: p.time):
        name = point.tags.get("phase", "?")
        event = point.fields.get("event")
        if event == "start":
            open_[name] = {"start": point.time,
                           "target_qps": int(point.fields.get("target_qps", 0))}
            if "target_connections" in point.fields:
                open_[name]["target_connections"] = int(point.fields["target_connections"])
        elif name not in open_:
            continue
        elif event in ("hold_start", "hold_end"):
            open_[name][str(event)] = point.time
        elif event == "end":
            close(name, point.time)
    for name in list(open_):
        close(name, last_second + 1)
    return sorted(spans, key=lambda s: s.start)


def build_series(points: Iterable[Point], run_id: str | None = None,
                 histograms: dict[int, HdrHistogram] | None = None) -> RunSeries:
    """Sum a run's points per second. Latency comes from ``histograms`` (merged from the
    run directory's .hlog files) when given, else from the hosts' ``latency`` points."""
    from_points = histograms is None
    merged: dict[int, HdrHistogram] = {} if histograms is None else histograms
    sums: dict[str, dict[str, dict[int, float]]] = {
        "server": defaultdict(lambda: defaultdict(float)),
        "client": defaultdict(lambda: defaultdict(float)),
    }
    phase_events: list[Point] = []
    clock_points: list[Point] = []
    hosts: dict[str, set[str]] = defaultdict(set)
    workers: dict[str, set[tuple[str, str]]] = defaultdict(set)
    seen_run_ids: set[str] = set()
    rss_kb: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    late_workers: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for point in points:
        if run_id is not None and point.tags.get("run_id") != run_id:
            continue
        seen_run_ids.add(point.tags.get("run_id", ""))
        if point.measurement == "phase":
            phase_events.append(point)
            continue
        if point.measurement == CLOCK_MEASUREMENT:
            clock_points.append(point)
            continue
        if point.measurement == NODE_MEASUREMENT:
            rss = point.fields.get("rss_kb")
            if isinstance(rss, int | float):
                rss_kb[point.tags.get("role", "")][point.time] += rss
            late = point.fields.get("workers_late")
            if isinstance(late, int | float):
                late_workers[point.tags.get("role", "")][point.time] += late
            continue
        if point.measurement == LATENCY_MEASUREMENT:
            encoded = point.fields.get(HISTOGRAM_FIELD)
            if from_points and isinstance(encoded, str):
                add_encoded(merged.setdefault(point.time, new_histogram()), [encoded])
            continue
        side = sums.get(point.measurement)
        if side is None:
            continue
        hosts[point.measurement].add(point.tags.get("host", ""))
        workers[point.measurement].add((point.tags.get("host", ""), point.tags.get("worker", "")))
        for name, value in point.fields.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if not name.startswith(LATENCY_PREFIX):
                side[name][point.time] += value
    all_times = [t for side in sums.values() for f in side.values() for t in f]
    if not all_times:
        raise ValueError(f"no server or client points found for run {run_id or '(any)'}")
    seconds = list(range(min(all_times), max(all_times) + 1))

    def dense(by_time: dict[int, float]) -> list[float]:
        return [by_time.get(t, 0.0) for t in seconds]

    return RunSeries(
        run_id=run_id or ",".join(sorted(seen_run_ids)),
        seconds=seconds,
        server={k: dense(v) for k, v in sums["server"].items()},
        client={k: dense(v) for k, v in sums["client"].items()},
        latency=_latency_series(merged, seconds),
        phases=_phase_spans(phase_events, seconds[-1]),
        histograms=merged,
        clock_offsets_ms=_first_offsets(clock_points),
        hosts={k: sorted(v) for k, v in hosts.items()},
        workers={k: len(v) for k, v in workers.items()},
        rss_kb={role: dict(by_time) for role, by_time in rss_kb.items()},
        late_workers={role: dict(by_time) for role, by_time in late_workers.items()},
    )


def _latency_series(histograms: dict[int, HdrHistogram],
                    seconds: list[int]) -> dict[str, list[float]]:
    empty = dict.fromkeys(LATENCY_FIELDS, 0)
    by_second = {t: percentiles(h) for t, h in histograms.items()}
    return {name: [float(by_second.get(t, empty)[name]) for t in seconds]
            for name in LATENCY_FIELDS}


def _first_offsets(points: list[Point]) -> dict[str, float]:
    """Each host's first recorded clock offset: the one at the run's start."""
    offsets: dict[str, float] = {}
    for point in sorted(points, key=lambda p: p.time):
        value = point.fields.get("offset_ms")
        if isinstance(value, int | float):
            offsets.setdefault(point.tags.get("host", ""), float(value))
    return offsets
