"""Reading points back from InfluxDB 1.x with InfluxQL (``/query``, epoch seconds)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from hongbao.metrics.lineprotocol import Point


def query_points(url: str, database: str, query: str, timeout: float = 30) -> Iterator[Point]:
    """Run ``query`` (use ``GROUP BY *`` to keep tags) and yield its rows as Points.
    Raises ValueError naming the server or the query when either fails."""
    address = f"{url.rstrip('/')}/query?" + urllib.parse.urlencode(
        {"db": database, "q": query, "epoch": "s"})
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        raise ValueError(f"InfluxDB at {url} rejected {query!r}: {error.read()!r}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ValueError(f"cannot reach InfluxDB at {url}: {error}") from None
    for result in body.get("results", []):
        if "error" in result:
            raise ValueError(f"InfluxDB rejected {query!r}: {result['error']}")
        for series in result.get("series", []):
            tags = series.get("tags", {})
            for row in series["values"]:
                values = dict(zip(series["columns"], row, strict=True))
                second = int(values.pop("time"))
                fields = {k: v for k, v in values.items() if v is not None}
                yield Point(series["name"], dict(tags), fields, second)


def run_query(measurement: str, run_id: str, since: int | None = None) -> str:
    """Every point of one run (optionally newer than ``since``), tags kept."""
    after = f" AND time > {since}s" if since is not None else ""
    return (f'SELECT * FROM "{measurement}" WHERE "run_id" = \'{run_id}\'{after} GROUP BY *')
