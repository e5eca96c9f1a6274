"""``hongbao ship RUN_DIR``: send a run directory's spooled points to InfluxDB.

This is how a run recorded offline gets into InfluxDB later, and how a node's spool is
replayed by hand after an outage. Only lines not yet shipped to that destination go out.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

from hongbao import flags
from hongbao.metrics.pointfile import metrics_dir
from hongbao.metrics.shipper import Shipper
from hongbao.metrics.sink_config import add_sink_flags, sink_from_args

DEFAULT_PATTERN = "*.lp"
DEFAULT_TIMEOUT_S = 60.0
PROGRESS_INTERVAL_S = 1.0


class ProgressPrinter:
    """Prints shipped and pending line counts, at most once per interval."""

    def __init__(self, interval: float = PROGRESS_INTERVAL_S) -> None:
        self._interval = interval
        self._last = 0.0

    def __call__(self, shipper: Shipper) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            print(f"shipped {shipper.lines_shipped} lines, {shipper.lines_pending} pending",
                  flush=True)


async def _follow(shipper: Shipper) -> bool:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"following {metrics_dir(shipper.run_dir)}; Ctrl-C stops", flush=True)
    return await shipper.run(stop)


def _outcome(shipper: Shipper, complete: bool, timeout: float) -> int:
    where = shipper.sink.describe()
    print(f"shipped {shipper.lines_shipped} lines to {where}", flush=True)
    if not complete:
        print(f"hongbao ship: {where} still failing after {timeout:g} s ({shipper.last_error});"
              f" {shipper.lines_pending} lines stay spooled in {metrics_dir(shipper.run_dir)}:"
              " run 'hongbao ship' again when InfluxDB is reachable", file=sys.stderr)
        return 1
    if shipper.lines_dropped:
        print(f"hongbao ship: {where} refused {shipper.lines_dropped} lines for good and they "
              f"were skipped: {shipper.last_error}", file=sys.stderr)
        return 2
    return 0


def _ship(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir
    if not metrics_dir(run_dir).is_dir():
        raise SystemExit(f"hongbao ship: {run_dir} has no metrics/ directory: "
                         "is it a run directory?")
    try:
        sink = sink_from_args(args)
    except ValueError as error:
        raise SystemExit(f"hongbao ship: {error}") from None
    if sink is None:
        raise SystemExit("hongbao ship: no InfluxDB to ship to: "
                         "set --influx-url or $HONGBAO_INFLUX_URL")
    patterns = args.pattern or [DEFAULT_PATTERN]
    shipper = Shipper(run_dir, patterns, sink, final_flush_timeout=args.timeout,
                      on_batch=ProgressPrinter())
    if not args.follow and not shipper.matching_files():
        raise SystemExit(f"hongbao ship: no files in {metrics_dir(run_dir)} match "
                         f"{' '.join(patterns)}")
    if args.from_start:
        shipper.restart_from_beginning()
    complete = asyncio.run(_follow(shipper)) if args.follow else shipper.ship_all(args.timeout)
    return _outcome(shipper, complete, args.timeout)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ship", help="send a run directory's spooled points to InfluxDB",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--pattern", action="append", metavar="GLOB",
                        help=f"point files to ship, under RUN_DIR/metrics (repeatable; "
                             f"default {DEFAULT_PATTERN})")
    parser.add_argument("--follow", action="store_true",
                        help="keep shipping new lines until Ctrl-C or SIGTERM")
    parser.add_argument("--timeout", type=flags.positive, default=DEFAULT_TIMEOUT_S,
                        help="give up when no batch went out for this many seconds (with "
                             "--follow: bounds the final flush) (default %(default)g)")
    parser.add_argument("--from-start", action="store_true",
                        help="ship everything again, ignoring what was shipped before")
    add_sink_flags(parser)
    parser.set_defaults(func=_ship)
