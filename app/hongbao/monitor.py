"""``hongbao monitor``: the seed's collector as a live terminal view.

Follows a run directory (tailing its ``.lp`` files) or InfluxDB 1.x (polling one run_id),
sums every worker's point per second, and shows the last seconds with totals and the
money balance below. Ctrl-C exits cleanly.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from hongbao import flags
from hongbao.flags import UsageError
from hongbao.metrics.influx_query import query_points, run_query
from hongbao.metrics.lineprotocol import Point, parse_line

ROWS_SHOWN = 15
ERROR_FIELDS = ("protocol_errors", "connect_errors", "timeouts")


class RunDirFollower:
    """New complete lines of every ``.lp`` file under ``<run_dir>/metrics``."""

    def __init__(self, run_dir: Path) -> None:
        self.metrics = run_dir / "metrics"
        self._offsets: dict[Path, int] = {}

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
    """Points of one run newer than the last poll, from InfluxDB 1.x."""

    def __init__(self, url: str, database: str, run_id: str) -> None:
        self.url, self.database, self.run_id = url.rstrip("/"), database, run_id
        self._since = 0

    def poll(self) -> Iterator[Point]:
        newest = self._since
        for measurement in ("server", "client"):
            query = run_query(measurement, self.run_id, since=self._since)
            for point in query_points(self.url, self.database, query, timeout=10):
                newest = max(newest, point.time)
                yield point
        self._since = newest


@dataclass
class Second:
    server: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    client: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    p99_us: float = 0.0
    phase: str = ""


@dataclass
class Collector:
    """Per-second sums over workers, and running totals."""

    seconds: dict[int, Second] = field(default_factory=dict)
    totals: dict[str, dict[str, float]] = field(
        default_factory=lambda: {"server": defaultdict(float), "client": defaultdict(float)})

    def add(self, point: Point) -> None:
        if point.measurement not in ("server", "client"):
            return
        second = self.seconds.setdefault(point.time, Second())
        side = getattr(second, point.measurement)
        second.phase = point.tags.get("phase", second.phase)
        for name, value in point.fields.items():
            if not isinstance(value, int | float):
                continue
            if name == "lat_p99_us":
                second.p99_us = max(second.p99_us, value)
            elif not name.startswith("lat_"):
                side[name] += value
                if name != "connections":
                    self.totals[point.measurement][name] += value

    def latest_connections(self, side: str) -> float:
        for second in sorted(self.seconds, reverse=True):
            value = getattr(self.seconds[second], side).get("connections")
            if value is not None:
                return value
        return 0


def _second_table(collector: Collector) -> Table:
    table = Table(title="per second (all workers summed)", title_justify="left")
    for heading in ("time", "phase", "client qps", "server qps", "server conns", "generated/s",
                    "won/s", "claims/s", "p99 ms", "errors"):
        table.add_column(heading, justify="left" if heading in ("time", "phase") else "right")
    complete = sorted(collector.seconds)[-ROWS_SHOWN - 1: -1]  # the newest may be partial
    for t in complete:
        s = collector.seconds[t]
        errors = sum(s.server.get(f, 0) + s.client.get(f, 0) for f in ERROR_FIELDS)
        table.add_row(
            time.strftime("%H:%M:%S", time.localtime(t)), s.phase,
            f"{s.client.get('requests', 0):,.0f}", f"{s.server.get('requests', 0):,.0f}",
            f"{s.server.get('connections', 0):,.0f}", f"{s.server.get('generated', 0):,.0f}",
            f"{s.server.get('won', 0):,.0f}", f"{s.server.get('claims', 0):,.0f}",
            f"{s.p99_us / 1000:.2f}", f"[red]{errors:,.0f}[/red]" if errors else "0",
        )
    return table


def _totals_table(collector: Collector) -> Table:
    server, client = collector.totals["server"], collector.totals["client"]
    generated, won = server["generated_amount"], server["won_amount"]
    sent, claimed = server["sent_amount"], server["claimed_amount"]
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
         f"{sent:,.0f} = {claimed:,.0f} + {sent - claimed:,.0f}"
         + ("" if claimed <= sent else "  [red]MISMATCH: over-claimed[/red]")),
        ("errors (protocol / connect / timeouts)",
         f"{server['protocol_errors'] + client['protocol_errors']:,.0f} / "
         f"{client['connect_errors']:,.0f} / {client['timeouts']:,.0f}"),
    ):
        table.add_row(label, value)
    return table


def render(collector: Collector) -> Group:
    return Group(_second_table(collector), _totals_table(collector))


def run_monitor(follower: RunDirFollower | InfluxFollower, once: bool, seconds: float | None,
                console: Console) -> int:
    collector = Collector()
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        for point in follower.poll():
            collector.add(point)
        if once:
            console.print(render(collector))
            return 0
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
