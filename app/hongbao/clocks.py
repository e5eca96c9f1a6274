"""``hongbao clock record``: a host's clock offset, as chrony reports it, recorded as a
``clock`` point of the run, so the report can state how well the hosts agree on the
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


def record_offset(run_dir: Path, run_id: str, host: str, offset: float,
                  at: int | None = None) -> Point:
    point = Point(CLOCK_MEASUREMENT, {"run_id": run_id, "host": host},
                  {"offset_ms": float(offset)}, int(time.time()) if at is None else at)
    sink = PointFile(run_dir, "clock-controller")
    sink.write([point])
    sink.close()
    return point


def _record(args: argparse.Namespace) -> int:
    from hongbao.local.phases import ship_now
    from hongbao.runs import resolve_run_dir, resolve_run_id

    run_id = resolve_run_id(args.run_id)
    try:
        offset = offset_ms(args.tracking) if args.tracking is not None else args.offset_ms
    except ValueError as error:
        raise UsageError(str(error)) from None
    if offset is None:
        raise UsageError("give --tracking (a line of 'chronyc -c tracking') or --offset-ms")
    record_offset(resolve_run_dir(args.run_dir, run_id), run_id, args.host_name, offset)
    print(f"clock of {args.host_name}: {offset:+.3f} ms")
    return ship_now(args, run_id, "clock-controller.lp", "clock")


def register(commands: argparse._SubParsersAction) -> None:
    from hongbao.metrics.sink_config import add_sink_flags

    parser = commands.add_parser("clock", help="record hosts' clock offsets in a run")
    actions = parser.add_subparsers(dest="clock_action", required=True)
    record = actions.add_parser("record", help="append a host's clock offset point")
    record.add_argument("--host-name", required=True, help="whose clock")
    record.add_argument("--tracking", help="the host's 'chronyc -c tracking' output")
    record.add_argument("--offset-ms", type=float, help="the offset, if known otherwise")
    record.add_argument("--run-id")
    record.add_argument("--run-dir")
    add_sink_flags(record)
    record.set_defaults(func=_record)
