"""After a real local run shipped into a real InfluxDB, ``hongbao monitor --once`` prints
the same seconds and totals from InfluxDB as from the run directory, balanced in both."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from hongbao.metrics.lineprotocol import Point, format_point
from hongbao.monitor import Collector, InfluxFollower

DATABASE = "monitor_once"
RUN_ID = "monitor-run"


def hongbao(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hongbao.cli", *args], capture_output=True,
                          text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_monitor_once_from_influxdb_equals_monitor_once_from_the_run_dir(
        influxdb, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {"HONGBAO_INFLUX_URL": influxdb.url, "HONGBAO_INFLUX_DB": DATABASE}
    run = hongbao("local-run", "--run-id", RUN_ID, "--run-dir", str(run_dir), "--users", "400",
                  "--clients", "2", "--server-workers", "1", "--phase-seconds", "3",
                  "--phase2-qps", "200", "--phase3-qps", "300", env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    shipped = hongbao("ship", str(run_dir), "--pattern", "phase-*.lp", env=env)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    from_influx = hongbao("monitor", "--once", "--influx-url", influxdb.url, "--influx-db",
                          DATABASE, "--run-id", RUN_ID)
    from_dir = hongbao("monitor", "--once", str(run_dir))
    assert from_influx.returncode == from_dir.returncode == 0, from_influx.stdout
    assert "Traceback" not in from_influx.stderr + from_dir.stderr
    totals = from_dir.stdout[from_dir.stdout.index("totals and money balance"):]
    assert "│ balance" in totals and " OK " in totals.split("│ balance")[1].split("\n")[0]
    assert "requests (client sent / server got / client answered)" in totals
    assert from_influx.stdout == from_dir.stdout  # every second, the hold line and totals
    # On failure, say what the hold line was (once, under make test's load, it was not this).
    assert "phase3: held 300 of 300 QPS" in from_dir.stdout, [
        line for line in from_dir.stdout.splitlines() if "phase3:" in line or "hold" in line]


def influx_post(url: str, path: str, body: str = "", **params: str) -> None:
    address = f"{url}{path}?" + urllib.parse.urlencode(params)
    urllib.request.urlopen(urllib.request.Request(address, data=body.encode(), method="POST"),
                           timeout=10).read()


def client_point(host: str, second: int) -> Point:
    return Point("client", {"run_id": "late-run", "host": host, "worker": "0",
                            "phase": "phase2"}, {"requests": 100, "responses": 100}, second)


def test_a_host_whose_points_arrive_late_is_not_lost(influxdb) -> None:
    database = "monitor_late"
    influx_post(influxdb.url, "/query", q=f"CREATE DATABASE {database}")
    start = int(time.time()) - 30

    def write(host: str, seconds: range) -> None:
        lines = "\n".join(format_point(client_point(host, t)) for t in seconds)
        influx_post(influxdb.url, "/write", lines, db=database, precision="s")

    follower = InfluxFollower(influxdb.url, database, "late-run")
    collector = Collector()
    write("early", range(start, start + 10))
    for point in follower.poll():
        collector.add(point)
    write("late", range(start, start + 8))  # the same seconds, after the monitor read them
    write("early", range(start + 10, start + 12))
    for point in follower.poll():
        collector.add(point)
    assert collector.totals["client"]["requests"] == 100 * (12 + 8)
    assert collector.seconds[start].client["requests"] == 200
    assert collector.complete(start) and not collector.complete(start + 9)
    # start+8.. lack the late host: shown only once the grace period has passed
    assert collector.shown(once=False, now=start + 12) == list(range(start, start + 8))
    assert collector.shown(once=False, now=start + 14) == list(range(start, start + 9))
