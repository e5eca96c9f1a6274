"""Where a report's points come from: a run directory, or InfluxDB 1.x plus a run_id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from hdrh.histogram import HdrHistogram

from hongbao.metrics.histograms import LATENCY_MEASUREMENT, latency_dir, per_second, run_dir_logs
from hongbao.metrics.influx_query import query_points, run_query
from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import run_points
from hongbao.report.series import CLOCK_MEASUREMENT, NODE_MEASUREMENT

MEASUREMENTS = (
    "server", "client", "phase", LATENCY_MEASUREMENT, CLOCK_MEASUREMENT, NODE_MEASUREMENT)


def points_from_run_dir(run_dir: Path) -> Iterator[Point]:
    if not (run_dir / "metrics").is_dir():
        raise ValueError(f"{run_dir} has no metrics/ directory: is it a run directory?")
    yield from run_points(run_dir)


def histograms_from_run_dir(run_dir: Path) -> dict[int, HdrHistogram] | None:
    """Every worker's .hlog merged per second; None when the run has no latency/ logs."""
    if not any(latency_dir(run_dir).glob("*.hlog")):
        return None
    return per_second(run_dir_logs(run_dir))


def points_from_influx(url: str, database: str, run_id: str) -> Iterator[Point]:
    """Every point of one run, read back from InfluxDB 1.x."""
    for measurement in MEASUREMENTS:
        yield from query_points(url, database, run_query(measurement, run_id))


def run_metadata(run_dir: Path | None) -> dict[str, object]:
    path = run_dir / "run.json" if run_dir else None
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text())
