"""Every dashboard query, run against a real InfluxDB holding a real run's points,
returns data: no typo in a field, measurement, tag or variable survives this."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from hongbao import grafana
from hongbao.local.phases import mark_phase
from hongbao.metrics.influx_query import query_points
from hongbao.metrics.shipper import Shipper
from hongbao.metrics.sinks import InfluxV1Sink
from tests.conftest import InfluxDBServer
from tests.e2e.nodes import NodeProcess, start_client, start_server, wait_for, wait_settled

RUN_ID = "test-run"  # what tests/e2e/nodes.py starts its nodes with
DATABASE = "grafana_dashboard"
USERS = 400
SHAKE_PACKETS = 100
SENT_PACKETS = 20


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """2 server and 2 client workers, 400 users, ~5 s at 300 QPS with shake and group
    packets, inside a 'grafana' phase; returns (run dir, first second, last second)."""
    run_dir = tmp_path_factory.mktemp("run")
    start = int(time.time())
    server = start_server(run_dir, 2)
    client: NodeProcess | None = None
    try:
        client = start_client(run_dir, server, USERS, 2)
        wait_for(lambda: client.counters()["logins"] == USERS, 30, "every user logged in")
        mark_phase(run_dir, RUN_ID, "grafana", "start", "controller", target_qps=300)
        server.get("/shake", qps=100, total=SHAKE_PACKETS)
        server.get("/send", qps=20, total=SENT_PACKETS, min_uid=0, max_uid=USERS - 1)
        client.get("/qps", qps=300)
        wait_for(lambda: client.counters()["requests"] >= 1500, 30, "5 s of shakes at 300 QPS")
        wait_for(lambda: server.counters()["generated"] == SHAKE_PACKETS, 20,
                 "every shake packet generated")
        wait_for(lambda: client.counters()["claims"] == 3 * SENT_PACKETS, 20,
                 "every share claimed")
        client.get("/qps", qps=0)
        mark_phase(run_dir, RUN_ID, "grafana", "end", "controller")
        wait_settled(server, client)
    finally:
        if client is not None:
            client.stop()
        server.stop()
    return run_dir, start, int(time.time())


def ship(run_dir: Path, influxdb: InfluxDBServer) -> None:
    """What ``hongbao ship RUN_DIR --influx-url .. --influx-db ..`` does."""
    shipper = Shipper(run_dir, ["*.lp"], InfluxV1Sink(influxdb.url, DATABASE))
    assert shipper.ship_all(timeout=20), shipper.status()
    assert shipper.lines_shipped > 0 and shipper.lines_dropped == 0, shipper.status()


@pytest.fixture(scope="module")
def shipped(short_run: tuple[Path, int, int], influxdb: InfluxDBServer) -> tuple[int, int]:
    run_dir, start, end = short_run
    ship(run_dir, influxdb)
    return start, end


def field_values(influxdb: InfluxDBServer, influxql: str) -> list[Any]:
    """Every non-null field value the query returns (tags and times left out)."""
    return [value for point in query_points(influxdb.url, DATABASE, influxql)
            for value in point.fields.values()]


DASHBOARD = grafana.build_dashboard()
PANEL_QUERIES = grafana.dashboard_queries(DASHBOARD)
HOST_CHOICES = {"All": ".*", "two hosts picked": "(client01|server)"}


@pytest.mark.parametrize("host_choice", HOST_CHOICES)
@pytest.mark.parametrize(("title", "query"), PANEL_QUERIES,
                         ids=[f"{title}-{index}" for index, (title, _) in
                              enumerate(PANEL_QUERIES)])
def test_every_panel_query_returns_data_for_the_run(
        title: str, query: str, host_choice: str, shipped: tuple[int, int],
        influxdb: InfluxDBServer) -> None:
    influxql = grafana.substitute(query, RUN_ID, HOST_CHOICES[host_choice], *shipped)
    assert field_values(influxdb, influxql), f"{title}: {influxql}"


def test_phase_annotation_marks_the_start_and_end(
        shipped: tuple[int, int], influxdb: InfluxDBServer) -> None:
    (query,) = [q for name, q in grafana.template_queries(DASHBOARD)
                if name.startswith("annotation")]
    points = list(query_points(influxdb.url, DATABASE,
                               grafana.substitute(query, RUN_ID, ".*", *shipped)))
    assert [(p.fields["phase"], p.fields["event"]) for p in points] == [
        ("grafana", "start"), ("grafana", "end")]


def test_run_and_host_variables_list_the_run_and_its_hosts(
        shipped: tuple[int, int], influxdb: InfluxDBServer) -> None:
    variables = {name: grafana.substitute(query, RUN_ID, ".*", *shipped)
                 for name, query in grafana.template_queries(DASHBOARD)
                 if name.startswith("variable")}
    runs = {row["value"] for row in influxdb.query(variables["variable run_id"], DATABASE)}
    hosts = {row["value"] for row in influxdb.query(variables["variable host"], DATABASE)}
    assert runs == {RUN_ID}
    assert hosts == {"server", "client01", "controller"}


def test_money_balance_panels_add_up(shipped: tuple[int, int], influxdb: InfluxDBServer) -> None:
    """The stat panels show the balance the ledgers prove: won + queued is generated,
    and claimed is sent, counted by the server and by the clients alike."""
    values: dict[str, Any] = {}
    for title, query in PANEL_QUERIES:
        if "money" in title:
            influxql = grafana.substitute(query, RUN_ID, ".*", *shipped)
            for point in query_points(influxdb.url, DATABASE, influxql):
                values.update(point.fields)
    assert values["generated"] > 0 and values["sent"] > 0
    assert values["won"] + values["queued"] == pytest.approx(values["generated"])
    assert values["claimed"] == pytest.approx(values["sent"])
    assert values["claimed by clients"] == pytest.approx(values["sent"])
