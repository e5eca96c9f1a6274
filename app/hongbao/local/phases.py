"""Phase boundaries as points in the ``phase`` measurement of a run directory."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hongbao import flags
from hongbao.flags import UsageError
from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import PointFile

PHASE_MEASUREMENT = "phase"
# start/end bound the whole phase; hold_start/hold_end bound the seconds in which the
# target rate is held (set before hold_start, still set at hold_end): ramp and marks excluded.
EVENTS = ("start", "end", "hold_start", "hold_end")


def event_second(event: str, now: float) -> int:
    """A hold starts at the first whole second after its mark; every other mark is the
    second it is made in (an end is exclusive, so the second in progress is left out)."""
    return int(now) + 1 if event == "hold_start" else int(now)


def mark_phase(run_dir: Path, run_id: str, phase: str, event: str, host: str,
               target_qps: int = 0, at: int | None = None,
               target_connections: int | None = None) -> Point:
    """Append a phase point (one of EVENTS); returns it."""
    if event not in EVENTS:
        raise ValueError(f"phase event must be one of {', '.join(EVENTS)}; got {event!r}")
    fields: dict[str, str | int] = {"event": event, "target_qps": target_qps}
    if target_connections is not None:
        fields["target_connections"] = target_connections
    point = Point(
        PHASE_MEASUREMENT,
        {"run_id": run_id, "phase": phase, "host": host},
        fields,
        event_second(event, time.time()) if at is None else at,
    )
    sink = PointFile(run_dir, f"phase-{host}")
    sink.write([point])
    sink.close()
    return point


def _mark(args: argparse.Namespace) -> int:
    from hongbao.runs import resolve_run_dir, resolve_run_id

    run_id = resolve_run_id(args.run_id)
    try:
        point = mark_phase(resolve_run_dir(args.run_dir, run_id), run_id, args.name, args.event,
                           args.host_name, args.target_qps,
                           target_connections=args.target_connections)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(f"phase {point.tags['phase']} {args.event} at {point.time}")
    return _ship_phase_points(args, run_id)


def _ship_phase_points(args: argparse.Namespace, run_id: str) -> int:
    return ship_now(args, run_id, f"phase-{args.host_name}.lp", "phase")


def ship_now(args: argparse.Namespace, run_id: str, pattern: str, what: str) -> int:
    """With an InfluxDB configured, ship this point file now (and any that an earlier
    outage left spooled)."""
    from hongbao.metrics.shipper import Shipper
    from hongbao.metrics.sink_config import sink_from_args
    from hongbao.runs import resolve_run_dir

    try:
        sink = sink_from_args(args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if sink is None:
        return 0
    run_dir = resolve_run_dir(args.run_dir, run_id)
    if Shipper(run_dir, [pattern], sink).ship_all(timeout=3):
        return 0
    print(f"InfluxDB did not take the {what} point; it stays spooled in {run_dir}/metrics: "
          "replay it with 'hongbao ship'")
    return 0  # the point is safe in the spool; a phase must not fail on the monitor


def register(commands: argparse._SubParsersAction) -> None:
    from hongbao.metrics.sink_config import add_sink_flags

    parser = commands.add_parser("phase", help="record phase boundaries")
    actions = parser.add_subparsers(dest="phase_action", required=True)
    mark = actions.add_parser("mark", help="append a phase start, end, hold_start or hold_end "
                              "point")
    mark.add_argument("--name", required=True, help="phase1, phase2, ...")
    mark.add_argument("--event", required=True, choices=EVENTS,
                      help="start/end of the phase, hold_start/hold_end of its held rate")
    mark.add_argument("--target-qps", type=flags.count(0), default=0)
    mark.add_argument("--target-connections", type=flags.count(0),
                      help="the connections the phase aims at (phase1)")
    mark.add_argument("--run-id")
    mark.add_argument("--run-dir")
    mark.add_argument("--host-name", default="controller", help="the 'host' tag")
    add_sink_flags(mark)
    mark.set_defaults(func=_mark)
