"""``hongbao monitor``: the seed's collector as a live terminal view.

Follows a run directory (tailing its ``.lp`` files) or InfluxDB 1.x (polling one run_id),
sums every worker's point per second, and shows the last seconds with totals and the
money balance below. A second is shown once every expected worker has reported it, or
after a grace period marked incomplete ("14/17 hosts"). Ctrl-C exits cleanly.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hdrh.histogram import HdrHistogram
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from hongbao import flags
from hongbao.flags import UsageError
from hongbao.metrics.histograms import (
    HISTOGRAM_FIELD,
    LATENCY_MEASUREMENT,
    merge_encoded,
    new_histogram,
)
from hongbao.metrics.influx_query import query_points, run_query
from hongbao.metrics.lineprotocol import Point, parse_line

ROWS_SHOWN = 15
GRACE_SECONDS = 5  # a second still missing a worker is shown (marked) this long after it
TRAILING_SECONDS = 60  # each InfluxDB poll re-reads this many seconds before the newest
SIDES = ("server", "client")
MEASUREMENTS = (*SIDES, LATENCY_MEASUREMENT, "phase")
ERROR_FIELDS = ("protocol_errors", "connect_errors", "timeouts")


class RunDirFollower:
    """New complete lines of every ``.lp`` file under ``<run_dir>/metrics``."""

    def __init__(self, run_dir: Path) -> None:
        self.metrics = run_dir / "metrics"
        self._offsets: dict[Path, int] = {}

    def describe(self) -> str:
        return str(self.metrics)

    def poll(self) -> Iterator[Point]:
        for path in sorted(self.metrics.glob("*.lp")):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._offsets[path] = offset + len(complete)
            for line in complete.decode().splitlines():
                if line.strip():
                    yield parse_line(line)


class InfluxFollower:
    """Points of one run from InfluxDB 1.x. Each poll re-reads a trailing window per
    measurement, so a host whose points arrive late is still seen; the Collector keys
    points by (measurement, host, worker, second), so a point read twice counts once."""

    def __init__(self, url: str, database: str, run_id: str) -> None:
        self.url, self.database, self.run_id = url.rstrip("/"), database, run_id
        self._newest: dict[str, int] = {}

    def describe(self) -> str:
        return f"run {self.run_id} in {self.url} (database {self.database})"

    def poll(self) -> Iterator[Point]:
        for measurement in MEASUREMENTS:
            newest = self._newest.get(measurement)
            since = None if newest is None else newest - TRAILING_SECONDS
            query = run_query(measurement, self.run_id, since=since)
            for point in query_points(self.url, self.database, query, timeout=10):
                self._newest[measurement] = max(self._newest.get(measurement, 0), point.time)
                yield point


Source = tuple[str, str, str]  # measurement, host, worker


@dataclass
class Second:
    server: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    client: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    sources: set[Source] = field(default_factory=set)
    histograms: dict[str, str] = field(default_factory=dict)  # host -> encoded
    phase_points: Counter[str] = field(default_factory=Counter)  # phase tag -> points

    @property
    def phase(self) -> str:
        """The phase most of the second's points carry. At a phase's start some workers
        still tag the old one; the choice must not depend on the order points arrive in
        (the run directory's files against InfluxDB's answer)."""
        counts = [(n, name) for name, n in self.phase_points.items() if n > 0]
        return max(counts)[1] if counts else ""


@dataclass
class Collector:
    """Per-second sums over workers, and running totals. A point seen again (re-read
    from InfluxDB) replaces the first copy instead of adding to it."""

    seconds: dict[int, Second] = field(default_factory=dict)
    totals: dict[str, dict[str, float]] = field(
        default_factory=lambda: {"server": defaultdict(float), "client": defaultdict(float)})
    sources: set[Source] = field(default_factory=set)
    phase_marks: dict[tuple[str, str, int], Point] = field(default_factory=dict)
    _points: dict[tuple[str, str, str, int], Point] = field(default_factory=dict)
    _merged: dict[int, HdrHistogram] = field(default_factory=dict)

    def add(self, point: Point) -> None:
        if point.measurement == "phase":
            key = (point.tags.get("phase", ""), str(point.fields.get("event")), point.time)
            self.phase_marks[key] = point
            return
        if point.measurement not in (*SIDES, LATENCY_MEASUREMENT):
            return
        key = (point.measurement, point.tags.get("host", ""), point.tags.get("worker", ""),
               point.time)
        old = self._points.get(key)
        if old == point:
            return
        if old is not None:
            self._account(old, -1)
        self._points[key] = point
        self._account(point, 1)

    def _account(self, point: Point, sign: int) -> None:
        second = self.seconds.setdefault(point.time, Second())
        host = point.tags.get("host", "")
        if point.measurement == LATENCY_MEASUREMENT:
            self._merged.pop(point.time, None)
            encoded = point.fields.get(HISTOGRAM_FIELD)
            if sign > 0 and isinstance(encoded, str):
                second.histograms[host] = encoded
            return
        source = (point.measurement, host, point.tags.get("worker", ""))
        self.sources.add(source)
        second.sources.add(source)
        if "phase" in point.tags:
            second.phase_points[point.tags["phase"]] += sign
        side = getattr(second, point.measurement)
        for name, value in point.fields.items():
            if not isinstance(value, int | float) or name.startswith("lat_"):
                continue
            side[name] += sign * value
            if name != "connections":
                self.totals[point.measurement][name] += sign * value

    def latest_connections(self, side: str) -> float:
        """Connections in the newest second every worker reported (a partial second
        would undercount), else in the newest second."""
        newest_first = sorted(self.seconds, reverse=True)
        for second in [t for t in newest_first if self.complete(t)] + newest_first:
            value = getattr(self.seconds[second], side).get("connections")
            if value is not None:
                return value
        return 0

    def complete(self, t: int) -> bool:
        return self.seconds[t].sources >= self.sources

    def shown(self, once: bool, now: float | None = None) -> list[int]:
        """Seconds every expected worker has reported, and the others once the grace
        period has passed (marked incomplete); with ``once``, every second."""
        waited = (time.time() if now is None else now) - GRACE_SECONDS
        return [t for t in sorted(self.seconds) if once or self.complete(t) or t < waited]

    def hosts(self, t: int | None = None) -> set[str]:
        sources = self.sources if t is None else self.seconds[t].sources
        return {host for _, host, _ in sources}

    def latency(self, seconds: list[int]) -> HdrHistogram:
        """Every host's histogram of these seconds, merged."""
        merged = new_histogram()
        for t in seconds:
            if t not in self._merged:
                histograms = self.seconds[t].histograms.values() if t in self.seconds else []
                self._merged[t] = merge_encoded(histograms)
            merged.add(self._merged[t])
        return merged

    def current_hold(self) -> tuple[str, int, list[int]] | None:
        """The latest phase with a target rate: (name, target, its hold seconds so far)."""
        starts = sorted((t, name) for (name, event, t) in self.phase_marks if event == "start")
        if not starts or not self.seconds:
            return None
        start, name = starts[-1]
        target = int(self.phase_marks[(name, "start", start)].fields.get("target_qps", 0))
        if not target:
            return None
        marks = {event: t for (phase, event, t) in self.phase_marks
                 if phase == name and t >= start}
        first = marks.get("hold_start", start)
        end = min(marks.get("hold_end", marks.get("end", max(self.seconds) + 1)),
                  max(self.seconds) + 1)
        return name, target, [t for t in range(first, end) if t in self.seconds
                              and self.complete(t)]


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _second_table(collector: Collector, once: bool) -> Table:
    table = Table(title="per second (all workers summed; p99 from every host's histograms "
                  "merged)", title_justify="left")
    for heading in ("time", "phase", "hosts", "client qps", "server qps", "server conns",
                    "generated/s", "won/s", "claims/s", "p99 ms", "errors"):
        table.add_column(heading, justify="left" if heading in ("time", "phase") else "right")
    every_host = len(collector.hosts())
    for t in collector.shown(once)[-ROWS_SHOWN:]:
        s = collector.seconds[t]
        errors = sum(s.server.get(f, 0) + s.client.get(f, 0) for f in ERROR_FIELDS)
        reported = f"{len(collector.hosts(t))}/{every_host}"
        p99 = collector.latency([t]).get_value_at_percentile(99.0)
        table.add_row(
            time.strftime("%H:%M:%S", time.gmtime(t)), s.phase,
            reported if collector.complete(t) else f"[yellow]{reported} incomplete[/yellow]",
            f"{s.client.get('requests', 0):,.0f}", f"{s.server.get('requests', 0):,.0f}",
            f"{s.server.get('connections', 0):,.0f}", f"{s.server.get('generated', 0):,.0f}",
            f"{s.server.get('won', 0):,.0f}", f"{s.server.get('claims', 0):,.0f}",
            _ms(p99), f"[red]{errors:,.0f}[/red]" if errors else "0",
        )
    return table


def _hold_line(collector: Collector) -> str:
    hold = collector.current_hold()
    if hold is None:
        return "no phase with a target rate yet"
    name, target, seconds = hold
    if not seconds:
        return f"{name}: target {target:,} QPS; no complete second of its hold yet"
    sent = sum(collector.seconds[t].client.get("requests", 0) for t in seconds)
    held = sent / len(seconds)
    p99 = collector.latency(seconds).get_value_at_percentile(99.0)
    return (f"{name}: held {held:,.0f} of {target:,} QPS ({100 * held / target:.2f}%) over "
            f"{len(seconds)} s of its hold; p99 {_ms(p99)} ms (every host's histograms merged)")


def _totals_table(collector: Collector) -> Table:
    server, client = collector.totals["server"], collector.totals["client"]
    generated, won = server["generated_amount"], server["won_amount"]
    sent, claimed = server["sent_amount"], server["claimed_amount"]
    balance_ok = generated >= won and claimed <= sent
    table = Table(title="totals and money balance (cents)", title_justify="left",
                  show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    for label, value in (
        ("connections (server / client)",
         f"{collector.latest_connections('server'):,.0f} / "
         f"{collector.latest_connections('client'):,.0f}"),
        ("requests (client sent / server got / client answered)",
         f"{client['requests']:,.0f} / {server['requests']:,.0f} / {client['responses']:,.0f}"),
        ("packets generated / won", f"{server['generated']:,.0f} / {server['won']:,.0f}"),
        ("shake money: generated = won + queued",
         f"{generated:,.0f} = {won:,.0f} + {generated - won:,.0f}"),
        ("sent money: sent = claimed + unclaimed",
         f"{sent:,.0f} = {claimed:,.0f} + {sent - claimed:,.0f}"),
        ("balance", "OK" if balance_ok else "[red]MISMATCH: more won or claimed than "
                                            "generated or sent[/red]"),
        ("errors (protocol / connect / timeouts)",
         f"{server['protocol_errors'] + client['protocol_errors']:,.0f} / "
         f"{client['connect_errors']:,.0f} / {client['timeouts']:,.0f}"),
    ):
        table.add_row(label, value)
    return table


def render(collector: Collector, once: bool = False) -> Group:
    return Group(_second_table(collector, once), _hold_line(collector),
                 _totals_table(collector))


def run_monitor(follower: RunDirFollower | InfluxFollower, once: bool, seconds: float | None,
                console: Console) -> int:
    collector = Collector()
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        for point in follower.poll():
            collector.add(point)
        if once:
            console.print(render(collector, once=True))
            return 0
        console.print(f"following {follower.describe()}; Ctrl-C stops", markup=False,
                      highlight=False, soft_wrap=True)
        with Live(render(collector), console=console, refresh_per_second=2) as live:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(1.0)
                for point in follower.poll():
                    collector.add(point)
                live.update(render(collector))
    except KeyboardInterrupt:
        console.print("\nmonitor stopped")
    except ValueError as error:  # InfluxDB unreachable or rejecting the query
        console.print(f"[red]hongbao monitor: {error}[/red]")
        return 1
    return 0


def _monitor(args: argparse.Namespace) -> int:
    if args.influx_url:
        if not args.run_id:
            raise UsageError("--influx-url needs --run-id")
        follower: RunDirFollower | InfluxFollower = InfluxFollower(
            args.influx_url, args.influx_db, args.run_id)
    elif args.run_dir is not None:
        if not (args.run_dir / "metrics").is_dir():
            raise UsageError(f"{args.run_dir} has no metrics/ directory")
        follower = RunDirFollower(args.run_dir)
    else:
        raise UsageError("give a run directory, or --influx-url and --run-id")
    return run_monitor(follower, args.once, args.seconds, Console())


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("monitor", help="live terminal view of a run")
    parser.add_argument("run_dir", type=Path, nargs="?", help="a run directory to follow")
    parser.add_argument("--run-id", help="which run (with --influx-url)")
    parser.add_argument("--influx-url", default=os.environ.get("HONGBAO_INFLUX_URL"))
    parser.add_argument("--influx-db", default=os.environ.get("HONGBAO_INFLUX_DB", "hongbao"))
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument("--seconds", type=flags.positive, help="stop following after this long")
    parser.set_defaults(func=_monitor)
