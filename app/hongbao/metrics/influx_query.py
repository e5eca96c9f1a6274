"""Reading points back from InfluxDB 1.x with InfluxQL (``/query``, epoch seconds), over
aiohttp like the 1.x sink's writes (InfluxDB 2.x's client cannot speak to 1.x)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp

from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.sinks import influx_error_text


def query_points(url: str, database: str, query: str, timeout: float = 30) -> Iterator[Point]:
    """Run ``query`` (use ``GROUP BY *`` to keep tags) and yield its rows as Points.
    Raises ValueError naming the server or the query when either fails."""
    body = asyncio.run(_fetch(url, database, query, timeout))
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


async def _fetch(url: str, database: str, query: str, timeout: float) -> dict[str, Any]:
    address = f"{url.rstrip('/')}/query"
    params = {"db": database, "q": query, "epoch": "s"}
    try:
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
                    as session, session.get(address, params=params) as response):
            if response.status >= 400:
                raise ValueError(f"InfluxDB at {url} rejected {query!r}: HTTP "
                                 f"{response.status}, {influx_error_text(await response.text())}")
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise ValueError(f"cannot reach InfluxDB at {url}: {error or type(error).__name__}"
                         ) from None


def run_query(measurement: str, run_id: str, since: int | None = None) -> str:
    """Every point of one run (optionally newer than ``since``), tags kept."""
    after = f" AND time > {since}s" if since is not None else ""
    return (f'SELECT * FROM "{measurement}" WHERE "run_id" = \'{run_id}\'{after} GROUP BY *')
