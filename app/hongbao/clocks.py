"""``hongbao clock record``: the hosts' clock offsets, as chrony reports them, recorded as
``clock`` points of the run, so the report can state how well the hosts agree on the
second (the pacing rule depends on it)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hongbao.flags import UsageError
from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import PointFile
from hongbao.report.series import CLOCK_MEASUREMENT

TRACKING_SYSTEM_TIME = 4  # `chronyc -c tracking`: the system clock's offset, seconds


def offset_ms(tracking_csv: str) -> float:
    """The system clock's offset from chrony's reference, in ms, from one line of
    ``chronyc -c tracking``."""
    fields = tracking_csv.strip().split(",")
    try:
        return round(float(fields[TRACKING_SYSTEM_TIME]) * 1000, 3)
    except (IndexError, ValueError):
        raise ValueError(f"not a line of 'chronyc -c tracking': {tracking_csv.strip()!r}"
                         ) from None


def record_offsets(run_dir: Path, run_id: str, offsets: dict[str, float],
                   at: int | None = None) -> list[Point]:
    """One ``clock`` point per host, all written at once to the controller's point file."""
    second = int(time.time()) if at is None else at
    points = [Point(CLOCK_MEASUREMENT, {"run_id": run_id, "host": host},
                    {"offset_ms": float(offset)}, second) for host, offset in offsets.items()]
    sink = PointFile(run_dir, "clock-controller")
    sink.write(points)
    sink.close()
    return points


def _offset_given(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"not an offset in ms: {value!r}") from None


def parse_offsets(trackings: list[str], offsets: list[str]) -> dict[str, float]:
    """Each host's offset in ms, from ``--tracking HOST=LINE`` and ``--offset-ms HOST=MS``."""
    given = [("--tracking", offset_ms, each) for each in trackings]
    given += [("--offset-ms", _offset_given, each) for each in offsets]
    if not given:
        raise UsageError("give --tracking HOST=LINE (a line of 'chronyc -c tracking') or "
                         "--offset-ms HOST=MS, once per host")
    parsed: dict[str, float] = {}
    for flag, parse, each in given:
        host, sep, value = each.partition("=")
        if not sep or not host:
            raise UsageError(f"{flag} takes HOST=VALUE, got {each!r}")
        try:
            parsed[host] = parse(value)
        except ValueError as error:
            raise UsageError(f"{flag} of {host}: {error}") from None
    return parsed


def _record(args: argparse.Namespace) -> int:
    from hongbao.local.phases import ship_now
    from hongbao.runs import resolve_run_dir, resolve_run_id

    run_id = resolve_run_id(args.run_id)
    offsets = parse_offsets(args.tracking, args.offset_ms)
    record_offsets(resolve_run_dir(args.run_dir, run_id), run_id, offsets)
    for host, offset in offsets.items():
        print(f"clock of {host}: {offset:+.3f} ms")
    return ship_now(args, run_id, "clock-controller.lp", "clock")


def register(commands: argparse._SubParsersAction) -> None:
    from hongbao.metrics.sink_config import add_sink_flags

    parser = commands.add_parser("clock", help="record hosts' clock offsets in a run")
    actions = parser.add_subparsers(dest="clock_action", required=True)
    record = actions.add_parser(
        "record", help="append the hosts' clock offset points, one command for all hosts")
    record.add_argument("--tracking", action="append", default=[], metavar="HOST=LINE",
                        help="a host's 'chronyc -c tracking' output (repeat per host)")
    record.add_argument("--offset-ms", action="append", default=[], metavar="HOST=MS",
                        help="a host's offset, if known otherwise (repeat per host)")
    record.add_argument("--run-id")
    record.add_argument("--run-dir")
    add_sink_flags(record)
    record.set_defaults(func=_record)
