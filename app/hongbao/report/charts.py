"""PNG charts in the spirit of the original gnuplot figures (matplotlib, no network)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from hongbao.report.series import RunSeries
from hongbao.report.tables import (
    SEED_SERVERS,
    SEED_WINDOW_S,
    MoneyBalance,
    Projection,
)

PHASE_COLOURS = ["#dbe9f6", "#fde2c8", "#d9f0d3", "#eadcf0", "#f6dbe0"]
Line = tuple[str, Sequence[float]]


def _shade_phases(ax: Axes, series: RunSeries) -> None:
    for index, span in enumerate(series.phases):
        ax.axvspan(span.start, span.end, alpha=0.6, lw=0,
                   color=PHASE_COLOURS[index % len(PHASE_COLOURS)])
        ax.text(span.start, 1.0, f" {span.name}", transform=ax.get_xaxis_transform(),
                va="top", fontsize=8, color="#444")


def _wall_clock(value: float, _position: int | None = None) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(value))


def _time_label(series: RunSeries) -> str:
    return f"time (UTC, {time.strftime('%Y-%m-%d', time.gmtime(series.seconds[0]))})"


def _timeline(ax: Axes, series: RunSeries, lines: list[Line], ylabel: str,
              scale: float = 1.0) -> None:
    _shade_phases(ax, series)
    for label, values in lines:
        if values:
            ax.plot(series.seconds, [v / scale for v in values], label=label, lw=1.2)
    ax.xaxis.set_major_formatter(FuncFormatter(_wall_clock))
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def timeline_chart(path: Path, series: RunSeries, title: str, lines: list[Line],
                   ylabel: str, scale: float = 1.0, log: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    _timeline(ax, series, lines, ylabel, scale)
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(_time_label(series))
    return _save(fig, path)


def combined_chart(path: Path, series: RunSeries, panels: list[tuple[str, list[Line]]]) -> Path:
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.4 * len(panels)), sharex=True)
    for ax, (ylabel, lines) in zip(axes, panels, strict=True):
        _timeline(ax, series, lines, ylabel)
    axes[0].set_title(f"run {series.run_id}: the whole run")
    axes[-1].set_xlabel(_time_label(series))
    return _save(fig, path)


def balance_chart(path: Path, balance: MoneyBalance) -> Path:
    """Two stacked bars: generated = won + queued, and sent = claimed + unclaimed."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    rows = [
        ("shake packets", balance.won_amount, balance.queued_amount,
         balance.generated_amount, balance.shake_ok),
        ("sent packets", balance.claimed_amount, balance.unclaimed_amount,
         balance.sent_amount, balance.send_ok),
    ]
    for y, (_label, done, open_, total, ok) in enumerate(rows):
        ax.barh(y, done / 100, color="#4c9a2a", label="won / claimed" if y == 0 else None)
        ax.barh(y, open_ / 100, left=done / 100, color="#f0a030",
                label="queued / unclaimed" if y == 0 else None)
        ax.text((done + open_) / 100, y, f"  = {total / 100:,.2f} {'OK' if ok else 'MISMATCH'}",
                va="center", fontsize=9)
    ax.set_yticks(range(len(rows)), [row[0] for row in rows])
    ax.set_xlabel("amount (yuan)")
    ax.set_title(f"money balance (from the {balance.source})")
    ax.legend(loc="lower right", fontsize=8)
    ax.margins(x=0.3)
    return _save(fig, path)


def projection_chart(path: Path, projection: Projection) -> Path:
    servers = list(range(50, 2001, 10))
    minutes = [Projection.seconds_for(n, projection.per_server_qps) / 60 for n in servers]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(servers, minutes, lw=1.5,
            label=f"measured {projection.per_server_qps:,.0f} QPS per server")
    ax.axvline(SEED_SERVERS, color="#888", ls="--", lw=1)
    ax.axhline(SEED_WINDOW_S / 60, color="#c33", ls="--", lw=1)
    ax.annotate(f"{SEED_SERVERS} servers: {projection.seconds_on_600 / 60:,.1f} min",
                (SEED_SERVERS, projection.seconds_on_600 / 60), fontsize=8,
                xytext=(8, 8), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("servers")
    ax.set_ylabel("minutes for 10^10 requests")
    ax.set_title(f"10-billion projection: {projection.servers_for_7_minutes:,} servers "
                 "finish in 7 minutes")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)
