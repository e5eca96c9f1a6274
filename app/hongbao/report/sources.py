"""Where a report's points come from: a run directory, or InfluxDB 1.x plus a run_id."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import run_points

MEASUREMENTS = ("server", "client", "phase")


def points_from_run_dir(run_dir: Path) -> Iterator[Point]:
    if not (run_dir / "metrics").is_dir():
        raise ValueError(f"{run_dir} has no metrics/ directory: is it a run directory?")
    yield from run_points(run_dir)


def points_from_influx(url: str, database: str, run_id: str) -> Iterator[Point]:
    """Every point of one run, read back with ``SELECT * ... GROUP BY *`` (tags kept)."""
    for measurement in MEASUREMENTS:
        query = (f'SELECT * FROM "{measurement}" WHERE "run_id" = \'{run_id}\' GROUP BY *')
        address = f"{url.rstrip('/')}/query?" + urllib.parse.urlencode(
            {"db": database, "q": query, "epoch": "s"})
        try:
            with urllib.request.urlopen(address, timeout=30) as response:
                body = json.load(response)
        except (urllib.error.URLError, OSError) as error:
            raise ValueError(f"cannot read run {run_id} from InfluxDB at {url}: {error}") from None
        for result in body.get("results", []):
            if "error" in result:
                raise ValueError(f"InfluxDB rejected {query!r}: {result['error']}")
            for series in result.get("series", []):
                columns = series["columns"]
                tags = series.get("tags", {})
                for row in series["values"]:
                    values = dict(zip(columns, row, strict=True))
                    time = int(values.pop("time"))
                    fields = {k: v for k, v in values.items() if v is not None}
                    yield Point(series["name"], dict(tags), fields, time)


def run_metadata(run_dir: Path | None) -> dict[str, object]:
    path = run_dir / "run.json" if run_dir else None
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text())
