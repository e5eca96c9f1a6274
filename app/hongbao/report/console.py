"""The report's tables for a terminal (rich)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from hongbao.report.tables import (
    MAX_CLOCK_OFFSET_MS,
    PHASE_COLUMNS,
    PHASE_HEADINGS,
    ClockAgreement,
    MoneyBalance,
    PhaseRow,
    Projection,
    phase_cells,
)

# The phase table's 16 columns at full scale (1,000,000 / 1,000,000 connections, latencies of
# seconds) need about 190 columns; where output is piped (make, ansible) rich would assume 80
# and cut every column to an ellipsis.
TABLE_WIDTH = 200


def report_console(**options: Any) -> Console:
    """A console for the report's tables: the terminal's width, or TABLE_WIDTH when piped."""
    probe = Console()
    return Console(width=probe.width if probe.is_terminal else TABLE_WIDTH, **options)


def phase_table(rows: list[PhaseRow]) -> Table:
    table = Table(title="phases (latency in ms)", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for heading in PHASE_HEADINGS:
        table.add_column(heading, justify="left" if heading == "phase" else "right",
                         no_wrap=True)
    for row in rows:
        table.add_row(*phase_cells(row))
    return table


def phase_legend(rows: list[PhaseRow]) -> list[str]:
    """Why a saturated phase is saturated, then what every column means."""
    lines = [f"[red]{r.name} saturated: {r.limit}[/red]" for r in rows if r.limit]
    return [*lines, *(f"[dim]{column}: {meaning}[/dim]" for column, meaning in PHASE_COLUMNS)]


def balance_lines(balance: MoneyBalance) -> list[str]:
    def mark(ok: bool) -> str:
        return "[green]OK[/green]" if ok else "[bold red]MISMATCH[/bold red]"

    return [
        f"shake: generated {balance.generated_amount:,} = won {balance.won_amount:,} + queued "
        f"{balance.queued_amount:,}"
        + (f" + lost in crash {balance.lost_in_crash_amount:,}"
           if balance.lost_in_crash_amount else "")
        + f" cents  {mark(balance.shake_ok)}",
        f"sent:  {balance.sent_amount:,} = claimed {balance.claimed_amount:,} + unclaimed "
        f"{balance.unclaimed_amount:,} cents  {mark(balance.send_ok)}",
        *(f"[red]- {p}[/red]" for p in balance.problems),
    ]


def clock_line(clock: ClockAgreement | None) -> str:
    if clock is None:
        return "clock offsets: not recorded for this run"
    hosts = ", ".join(f"{h} {v:+.3f}" for h, v in clock.offsets_ms.items())
    verdict = ("[green]OK[/green]" if clock.ok else
               f"[bold red]over {MAX_CLOCK_OFFSET_MS:.0f} ms: {', '.join(clock.off)}[/bold red]")
    return f"clock offsets at the start (chrony, ms): {hosts}  {verdict}"


def print_summary(console: Console, rows: list[PhaseRow], balance: MoneyBalance,
                  projected: Projection | None, clock: ClockAgreement | None = None) -> None:
    console.print(phase_table(rows))
    for line in phase_legend(rows):
        console.print(line)
    console.print(clock_line(clock))
    console.print(f"money balance (from the {balance.source}):")
    for line in balance_lines(balance):
        console.print("  " + line)
    if projected is not None:
        console.print(
            f"10-billion projection: {projected.per_server_qps:,.0f} QPS per server -> "
            f"{projected.seconds_on_600 / 60:,.1f} min on 600 servers; "
            f"{projected.servers_for_7_minutes:,} servers for 7 minutes")
