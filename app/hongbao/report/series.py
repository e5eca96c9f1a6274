"""Per-second series of a run, summed over workers and hosts, with its phase spans."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from hongbao.metrics.lineprotocol import Point

LATENCY_PREFIX = "lat_"


@dataclass(frozen=True)
class PhaseSpan:
    name: str
    start: int
    end: int  # exclusive
    target_qps: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass
class RunSeries:
    """``server`` and ``client`` map a field to its per-second sum over every worker;
    ``latency`` maps a percentile field to its per-second maximum over client workers."""

    run_id: str
    seconds: list[int]
    server: dict[str, list[float]]
    client: dict[str, list[float]]
    latency: dict[str, list[float]]
    phases: list[PhaseSpan]
    hosts: dict[str, list[str]] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)

    def total(self, side: str, name: str, span: PhaseSpan | None = None) -> float:
        values = getattr(self, side).get(name, [])
        return sum(self.window(values, span))

    def window(self, values: list[float], span: PhaseSpan | None) -> list[float]:
        if span is None or not self.seconds:
            return values
        first = self.seconds[0]
        return values[max(0, span.start - first): max(0, span.end - first)]


def _phase_spans(events: list[Point], last_second: int) -> list[PhaseSpan]:
    starts: dict[str, tuple[int, int]] = {}
    spans: list[PhaseSpan] = []
    for point in sorted(events, key=lambda p: p.time):
        name = point.tags.get("phase", "?")
        target = int(point.fields.get("target_qps", 0))
        if point.fields.get("event") == "start":
            starts[name] = (point.time, target)
        elif name in starts:
            start, target = starts.pop(name)
            spans.append(PhaseSpan(name, start, max(point.time, start + 1), target))
    spans.extend(PhaseSpan(n, s, last_second + 1, t) for n, (s, t) in starts.items())
    return sorted(spans, key=lambda s: s.start)


def build_series(points: Iterable[Point], run_id: str | None = None) -> RunSeries:
    sums: dict[str, dict[str, dict[int, float]]] = {
        "server": defaultdict(lambda: defaultdict(float)),
        "client": defaultdict(lambda: defaultdict(float)),
    }
    latency: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    phase_events: list[Point] = []
    hosts: dict[str, set[str]] = defaultdict(set)
    workers: dict[str, set[tuple[str, str]]] = defaultdict(set)
    seen_run_ids: set[str] = set()
    for point in points:
        if run_id is not None and point.tags.get("run_id") != run_id:
            continue
        seen_run_ids.add(point.tags.get("run_id", ""))
        if point.measurement == "phase":
            phase_events.append(point)
            continue
        side = sums.get(point.measurement)
        if side is None:
            continue
        hosts[point.measurement].add(point.tags.get("host", ""))
        workers[point.measurement].add((point.tags.get("host", ""), point.tags.get("worker", "")))
        for name, value in point.fields.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if name.startswith(LATENCY_PREFIX):
                latency[name][point.time] = max(latency[name][point.time], value)
            else:
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
        latency={k: dense(v) for k, v in latency.items()},
        phases=_phase_spans(phase_events, seconds[-1]),
        hosts={k: sorted(v) for k, v in hosts.items()},
        workers={k: len(v) for k, v in workers.items()},
    )
