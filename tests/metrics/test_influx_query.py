"""Reading points back from a real InfluxDB 1.x: rows come back as points with their tags,
and a refused query or an unreachable server is one clear error."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest

from hongbao.local.node_process import free_port
from hongbao.metrics.influx_query import query_points, run_query
from tests.conftest import InfluxDBServer

DATABASE = "influx_query_test"


def post(url: str, path: str, params: dict[str, str], body: bytes = b"") -> None:
    """POST to InfluxDB; a refusal fails with its status and InfluxDB's own words (a
    statement error comes back as 200 with an "error" in the body)."""
    address = f"{url}{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(urllib.request.Request(address, data=body, method="POST"),
                                    timeout=10) as response:
            answer = response.read()
            assert response.status in (200, 204), (response.status, answer)
    except urllib.error.HTTPError as error:
        pytest.fail(f"{path} {params}: HTTP {error.code}: {error.read()[:300]!r}")
    assert b'"error"' not in answer, (path, params, answer[:300])


def test_rows_come_back_as_points_with_their_tags(influxdb: InfluxDBServer) -> None:
    post(influxdb.url, "/query", {"q": f"CREATE DATABASE {DATABASE}"})
    lines = (b"client,run_id=r7,host=client01,worker=0 requests=5i,responses=4i 1800000000\n"
             b"client,run_id=r7,host=client01,worker=0 requests=6i 1800000001\n"
             b"client,run_id=other,host=client01,worker=0 requests=9i 1800000001\n")
    post(influxdb.url, "/write", {"db": DATABASE, "precision": "s"}, lines)
    points = list(query_points(influxdb.url, DATABASE, run_query("client", "r7")))
    assert [(p.time, p.fields) for p in points] == [
        (1800000000, {"requests": 5, "responses": 4}), (1800000001, {"requests": 6})]
    assert points[0].tags == {"run_id": "r7", "host": "client01", "worker": "0"}
    newer = query_points(influxdb.url, DATABASE, run_query("client", "r7", since=1800000000))
    assert [p.time for p in newer] == [1800000001]


def test_a_refused_query_names_the_query_and_the_reason(influxdb: InfluxDBServer) -> None:
    with pytest.raises(ValueError, match=r"rejected 'SELEC x'.*HTTP 400, error parsing query"):
        list(query_points(influxdb.url, DATABASE, "SELEC x"))
    with pytest.raises(ValueError, match=r"rejected .*database not found"):
        list(query_points(influxdb.url, "no_such_database", run_query("client", "r7")))


def test_an_unreachable_server_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ValueError, match=rf"cannot reach InfluxDB at {url}: .*[Cc]onnect"):
        list(query_points(url, DATABASE, run_query("client", "r7"), timeout=5))
