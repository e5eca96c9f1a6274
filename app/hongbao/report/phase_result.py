"""``hongbao phase-result``: one phase's row and the money so far, read from InfluxDB while
the run goes on, so each phase playbook ends by printing its own result."""

from __future__ import annotations

import argparse
import os

from hongbao import flags
from hongbao.report.console import balance_lines, phase_legend, phase_table, report_console
from hongbao.report.series import build_series
from hongbao.report.sources import points_from_influx
from hongbao.report.tables import money_balance, phase_rows


def _phase_result(args: argparse.Namespace) -> int:
    try:
        series = build_series(points_from_influx(args.influx_url, args.influx_db,
                                                 args.run_id), args.run_id)
    except ValueError as error:
        raise flags.UsageError(str(error)) from None
    rows = [row for row in phase_rows(series) if row.name == args.name]
    if not rows:
        raise flags.UsageError(f"run {args.run_id} has no phase {args.name!r} in "
                               f"{args.influx_url} yet")
    console = report_console(no_color=True, highlight=False)
    console.print(phase_table(rows))
    for line in phase_legend(rows)[:1 if rows[0].limit else 0]:
        console.print(line)
    console.print("money so far (from the servers' counters):")
    for line in balance_lines(money_balance(series, None)):
        console.print("  " + line)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("phase-result",
                                 help="one phase's row and the money so far, from InfluxDB")
    parser.add_argument("--name", required=True, help="the phase: phase2, phase3, knee-...")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--influx-url", default=os.environ.get("HONGBAO_INFLUX_URL"),
                        required="HONGBAO_INFLUX_URL" not in os.environ,
                        help="InfluxDB 1.x base URL ($HONGBAO_INFLUX_URL)")
    parser.add_argument("--influx-db", default=os.environ.get("HONGBAO_INFLUX_DB", "hongbao"))
    parser.set_defaults(func=_phase_result)
