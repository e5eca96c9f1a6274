"""A real run streaming into a real InfluxDB, which is stopped for ~10 s mid-run: after
the replay InfluxDB holds every second of every process, once, and the totals match."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from hongbao.metrics.pointfile import read_points
from hongbao.money import ledger_files, reconcile
from hongbao.report.build import CHART_TITLES, write_report
from hongbao.report.series import build_series
from hongbao.report.sources import (
    histograms_from_run_dir,
    points_from_influx,
    points_from_run_dir,
)
from tests.e2e.nodes import (
    NodeProcess,
    mark_phase,
    start_client,
    start_server,
    wait_for,
    wait_settled,
)

DATABASE = "e2e_outage"
OUTAGE_S = 60  # DESIGN §10: InfluxDB down for 60 s loses no point
USERS = 2000


@pytest.fixture(scope="module")
def outage_run(influxdb, tmp_path_factory: pytest.TempPathFactory) -> dict:
    run_dir = tmp_path_factory.mktemp("outage")
    env = {"HONGBAO_INFLUX_URL": influxdb.url, "HONGBAO_INFLUX_DB": DATABASE}
    server = start_server(run_dir, 2, env=env)
    client: NodeProcess | None = None
    try:
        client = start_client(run_dir, server, USERS, 2, env=env)
        wait_for(lambda: client.counters()["logins"] == USERS, 60, "every user logged in")
        mark_phase(run_dir, "phase2", "start", env)
        server.get("/shake", qps=100, total=2000)
        server.get("/send", qps=20, total=400, min_uid=0, max_uid=USERS - 1)
        client.get("/qps", qps=500)
        wait_for(lambda: server.status()["shipping"]["lines_shipped"] > 0, 30,
                 "points reaching InfluxDB before the outage")
        influxdb.stop()
        outage = (time.time(), None)
        # InfluxDB stays down for OUTAGE_S while the load goes on; the nodes keep spooling.
        wait_for(lambda: time.time() - outage[0] >= OUTAGE_S
                 and server.status()["shipping"]["lines_pending"] > 0, OUTAGE_S + 30,
                 f"{OUTAGE_S} s of outage with points pending")
        stalled = server.status()["shipping"]
        influxdb.start()
        outage = (outage[0], time.time())
        wait_for(lambda: server.status()["shipping"]["consecutive_failures"] == 0
                 and client.status()["shipping"]["consecutive_failures"] == 0, 60,
                 "shipping resumed after the outage")
        client.get("/qps", qps=0)
        mark_phase(run_dir, "phase2", "end", env)
        wait_settled(server, client)
        totals = {"server": server.counters(), "client": client.counters()}
    finally:
        codes = [client.stop() if client else None, server.stop()]
    return {"run_dir": run_dir, "totals": totals, "codes": codes, "outage": outage,
            "stalled": stalled}


def local_points(run_dir: Path, measurement: str) -> list:
    return [p for path in (run_dir / "metrics").glob(f"{measurement}-*.lp")
            for p in read_points(path)]


def test_outage_really_stalled_shipping(outage_run: dict) -> None:
    stalled = outage_run["stalled"]
    assert stalled["failures"] > 0 and stalled["lines_pending"] > 0
    assert outage_run["codes"] == [0, 0]


@pytest.mark.parametrize("measurement", ["server", "client"])
def test_influx_holds_every_second_of_every_process_once(influxdb, outage_run: dict,
                                                         measurement: str) -> None:
    rows = influxdb.query(f'SELECT requests FROM "{measurement}" WHERE run_id = \'test-run\' '
                          "GROUP BY host, worker", DATABASE)
    in_influx = Counter((r["host"], r["worker"], r["time"]) for r in rows)
    local = Counter((p.tags["host"], p.tags["worker"], p.time)
                    for p in local_points(outage_run["run_dir"], measurement))
    assert in_influx == local  # same seconds, each exactly once
    start, end = outage_run["outage"]
    assert any(start < t < end for _, _, t in in_influx), "no point from the outage window"
    for host, worker in {(h, w) for h, w, _ in in_influx}:
        seconds = sorted(t for h, w, t in in_influx if (h, w) == (host, worker))
        assert seconds == list(range(seconds[0], seconds[-1] + 1)), f"gap in {host}/{worker}"


@pytest.mark.parametrize("measurement", ["server", "client"])
def test_influx_requests_sum_to_the_process_totals(influxdb, outage_run: dict,
                                                   measurement: str) -> None:
    rows = influxdb.query(f'SELECT sum(requests) FROM "{measurement}" '
                          "WHERE run_id = 'test-run'", DATABASE)
    assert rows[0]["sum"] == outage_run["totals"][measurement]["requests"] > 5000


def test_phase_points_reached_influx(influxdb, outage_run: dict) -> None:
    rows = influxdb.query("SELECT event FROM phase WHERE run_id = 'test-run' GROUP BY phase",
                          DATABASE)
    assert [(r["phase"], r["event"]) for r in rows] == [("phase2", "start"), ("phase2", "end")]


def test_report_from_influx_and_from_the_run_directory_balance(influxdb, outage_run: dict,
                                                               tmp_path: Path) -> None:
    run_dir = outage_run["run_dir"]
    from_influx = write_report(
        build_series(points_from_influx(influxdb.url, DATABASE, "test-run"), "test-run"),
        tmp_path / "influx", None, {})
    from_dir = write_report(build_series(points_from_run_dir(run_dir), "test-run",
                                         histograms_from_run_dir(run_dir)),
                            tmp_path / "dir", reconcile(ledger_files(run_dir)), {})
    for report in (from_influx, from_dir):
        assert report.balance.ok, report.balance.problems
        assert all(report.charts[name].stat().st_size > 10_000 for name, _ in CHART_TITLES)
        assert [row.name for row in report.phases] == ["phase2"]
    assert from_dir.balance.source == "ledger"
    assert from_influx.phases[0].server_held_qps == pytest.approx(
        from_dir.phases[0].server_held_qps)
    # per-host histograms merged (InfluxDB) = every worker's .hlog merged (run directory)
    assert from_influx.phases[0].p99_ms == from_dir.phases[0].p99_ms > 0
