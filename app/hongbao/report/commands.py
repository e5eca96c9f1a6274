"""``hongbao report``: a run directory, or InfluxDB plus a run_id, -> report.html."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _report(args: argparse.Namespace) -> int:
    # Imported here: matplotlib is slow to load, and every hongbao command builds the parser.
    from hongbao.money import ledger_files, reconcile
    from hongbao.report.build import write_report
    from hongbao.report.console import print_summary, report_console
    from hongbao.report.series import build_series
    from hongbao.report.sources import (
        histograms_from_run_dir,
        points_from_influx,
        points_from_run_dir,
        run_metadata,
    )

    console = report_console()
    run_dir: Path | None = args.run_dir
    histograms = None
    try:
        if args.influx_url:
            if not args.run_id:
                raise ValueError("--influx-url needs --run-id: which run to report")
            points = points_from_influx(args.influx_url, args.influx_db, args.run_id)
        elif run_dir is not None:
            points = points_from_run_dir(run_dir)
            histograms = histograms_from_run_dir(run_dir)
        else:
            raise ValueError("give a run directory, or --influx-url with --run-id")
        series = build_series(points, args.run_id, histograms)
    except ValueError as error:
        raise SystemExit(f"hongbao report: {error}") from None
    ledgers = ledger_files(run_dir) if run_dir else []
    ledger = reconcile(ledgers) if ledgers else None
    out = args.out or (run_dir / "report" if run_dir else Path("runs") / series.run_id / "report")
    report = write_report(series, out, ledger, run_metadata(run_dir))
    print_summary(console, report.phases, report.balance, report.projection, report.clock)
    console.print(f"report: {report.html}; summary: {report.summary}")
    return 0 if report.balance.ok else 1


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help="charts and report.html for a run")
    parser.add_argument("run_dir", type=Path, nargs="?", help="a run directory")
    parser.add_argument("--out", type=Path, help="default RUN_DIR/report")
    parser.add_argument("--run-id", help="which run (needed with --influx-url)")
    parser.add_argument("--influx-url", default=os.environ.get("HONGBAO_INFLUX_URL"),
                        help="read the run from InfluxDB 1.x instead ($HONGBAO_INFLUX_URL)")
    parser.add_argument("--influx-db", default=os.environ.get("HONGBAO_INFLUX_DB", "hongbao"))
    parser.set_defaults(func=_report)
