"""Write a run's report: charts/*.png and report.html, from a RunSeries."""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from hongbao import __version__
from hongbao.money import Balance
from hongbao.report import charts
from hongbao.report.series import RunSeries
from hongbao.report.summary import memory_per_connection, summary, write_summary
from hongbao.report.tables import (
    MAX_CLOCK_OFFSET_MS,
    PHASE_COLUMNS,
    PHASE_HEADINGS,
    ClockAgreement,
    MoneyBalance,
    PhaseRow,
    Projection,
    clock_agreement,
    money_balance,
    phase_cells,
    phase_rows,
    projection,
)

CHART_TITLES = [
    ("combined", "The whole run"),
    ("generated", "Red packets generated per second"),
    ("won", "Red packets won per second"),
    ("claims", "Sent packets and claims per second"),
    ("connections", "Connections"),
    ("latency", "Latency percentiles per second, all client workers and hosts merged "
                "(from intended send time)"),
]


@dataclass(frozen=True)
class Report:
    html: Path
    summary: Path
    charts: dict[str, Path]
    phases: list[PhaseRow]
    balance: MoneyBalance
    projection: Projection | None
    clock: ClockAgreement | None


def _draw(series: RunSeries, out: Path, balance: MoneyBalance,
          projected: Projection | None) -> dict[str, Path]:
    s, c = series.server, series.client
    qps = [("client requests/s", c.get("requests", [])),
           ("server requests/s", s.get("requests", []))]
    packets = [("generated/s", s.get("generated", [])), ("won/s", s.get("won", []))]
    conns = [("server connections", s.get("connections", [])),
             ("client connections", c.get("connections", []))]
    lat = [(label, [v if v > 0 else math.nan for v in series.latency.get(key, [])])
           for label, key in (("p50", "lat_p50_us"), ("p99", "lat_p99_us"),
                              ("p99.9", "lat_p999_us"), ("max", "lat_max_us"))]  # gap: idle
    made = {
        "combined": charts.combined_chart(out / "combined.png", series, [
            ("requests / s", qps), ("connections", conns), ("packets / s", packets)]),
        "generated": charts.timeline_chart(out / "generated.png", series,
                                           "Red packets generated", packets[:1], "packets / s"),
        "won": charts.timeline_chart(out / "won.png", series, "Red packets won", packets[1:],
                                     "packets / s"),
        "claims": charts.timeline_chart(out / "claims.png", series, "Sent packets and claims", [
            ("sent packets/s", s.get("sent_packets", [])), ("claims/s", s.get("claims", []))],
            "per second"),
        "connections": charts.timeline_chart(out / "connections.png", series, "Connections",
                                             conns, "connections"),
        "latency": charts.timeline_chart(out / "latency.png", series, "Latency", lat, "ms",
                                         scale=1000, log=True),
        "balance": charts.balance_chart(out / "balance.png", balance),
    }
    if projected is not None:
        made["projection"] = charts.projection_chart(out / "projection.png", projected)
    return made


def _clock(second: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(second))


def write_report(series: RunSeries, out_dir: Path, ledger: Balance | None,
                 metadata: dict[str, object]) -> Report:
    chart_dir = out_dir / "charts"
    chart_dir.mkdir(parents=True, exist_ok=True)
    rows = phase_rows(series)
    balance = money_balance(series, ledger)
    projected = projection(series, rows)
    clock = clock_agreement(series)
    made = _draw(series, chart_dir, balance, projected)
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hongbao.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    meta = {"hongbao version": __version__, "python": platform.python_version(),
            "platform": platform.platform(), **{k: json.dumps(v) if isinstance(v, dict | list)
                                                 else v for k, v in metadata.items()}}
    html = environment.get_template("report.html").render(
        run_id=series.run_id, start=_clock(series.seconds[0]), end=_clock(series.seconds[-1]),
        duration=len(series.seconds), hosts=series.hosts, workers=series.workers,
        balance=balance, phases=rows, projection=projected, phase_headings=PHASE_HEADINGS,
        phase_cells=[phase_cells(r) for r in rows], phase_columns=PHASE_COLUMNS,
        clock=clock, max_clock_offset_ms=MAX_CLOCK_OFFSET_MS,
        charts={k: str(v.relative_to(out_dir)) for k, v in made.items()},
        chart_titles=CHART_TITLES, metadata=meta,
    )
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    summary_path = write_summary(out_dir / "summary.json",
                                 summary(series.run_id, rows, balance, metadata,
                                         memory_per_connection(series), clock))
    return Report(path, summary_path, made, rows, balance, projected, clock)
