"""``hongbao ship RUN_DIR``: replaying a run's spool into InfluxDB from the command line."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hongbao.local.node_process import free_port
from hongbao.metrics.commands import register
from tests.conftest import InfluxDBServer
from tests.metrics.spoolfiles import FIRST_SECOND, server_points, spool


def _ship(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    for name in ("URL", "VERSION", "DB", "RP", "USER", "PASSWORD", "TOKEN", "ORG", "BUCKET"):
        monkeypatch.delenv(f"HONGBAO_INFLUX_{name}", raising=False)
    parser = argparse.ArgumentParser(prog="hongbao")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["ship", *argv])
    return args.func(args)


def test_ship_replays_a_run_recorded_offline_and_exits_zero(
        influxdb: InfluxDBServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    spool(tmp_path, "server-h1-w0", server_points("run-c", 0, FIRST_SECOND, 90))
    spool(tmp_path, "client-h1-w0", [])
    argv = [str(tmp_path), "--influx-url", influxdb.url, "--influx-db", "cli"]

    assert _ship(argv, monkeypatch) == 0
    assert f"shipped 90 lines to InfluxDB 1.x at {influxdb.url}" in capsys.readouterr().out
    assert influxdb.query("SELECT count(requests) AS n FROM server", "cli")[0]["n"] == 90

    assert _ship(argv, monkeypatch) == 0
    assert "shipped 0 lines" in capsys.readouterr().out


def test_ship_exits_nonzero_naming_the_unreachable_sink(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    spool(tmp_path, "server-h1-w0", server_points("run-c", 0, FIRST_SECOND, 10))
    url = f"http://127.0.0.1:{free_port()}"

    assert _ship([str(tmp_path), "--influx-url", url, "--timeout", "0.5"], monkeypatch) == 1
    error = capsys.readouterr().err
    assert f"InfluxDB 1.x at {url} (database 'hongbao') still failing after 0.5 s" in error
    assert "is unreachable" in error
    assert "10 lines stay spooled" in error


def test_ship_without_an_influxdb_url_says_how_to_give_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool(tmp_path, "server-h1-w0", [])
    with pytest.raises(SystemExit, match="set --influx-url or \\$HONGBAO_INFLUX_URL"):
        _ship([str(tmp_path)], monkeypatch)


def test_ship_refuses_a_directory_that_is_not_a_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="has no metrics/ directory"):
        _ship([str(tmp_path), "--influx-url", "http://127.0.0.1:8086"], monkeypatch)


def test_ship_says_when_no_file_matches_the_patterns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool(tmp_path, "server-h1-w0", [])
    with pytest.raises(SystemExit, match=r"no files in .*metrics match client-\*\.lp"):
        _ship([str(tmp_path), "--influx-url", "http://127.0.0.1:8086",
               "--pattern", "client-*.lp"], monkeypatch)


FOLLOW_SCRIPT = """
import argparse, sys
from hongbao.metrics.commands import register
parser = argparse.ArgumentParser(prog="hongbao")
register(parser.add_subparsers(required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def _stored_lines(influxdb: InfluxDBServer, database: str) -> int:
    if database not in {row["name"] for row in influxdb.query("SHOW DATABASES", "")}:
        return 0
    rows = influxdb.query("SELECT count(requests) AS n FROM server", database)
    return rows[0]["n"] if rows else 0


def _wait_for_lines(influxdb: InfluxDBServer, database: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while _stored_lines(influxdb, database) != count:
        assert time.monotonic() < deadline, f"InfluxDB never held {count} lines"
        time.sleep(0.05)


def test_ship_follow_sends_new_lines_until_sigterm_then_exits_zero(
        influxdb: InfluxDBServer, tmp_path: Path) -> None:
    spool(tmp_path, "server-h1-w0", server_points("run-f", 0, FIRST_SECOND, 20))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HONGBAO_INFLUX")}
    process = subprocess.Popen(
        [sys.executable, "-c", FOLLOW_SCRIPT, "ship", str(tmp_path), "--follow",
         "--influx-url", influxdb.url, "--influx-db", "follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    try:
        _wait_for_lines(influxdb, "follow", 20)
        spool(tmp_path, "server-h1-w0", server_points("run-f", 0, FIRST_SECOND + 20, 15))
        _wait_for_lines(influxdb, "follow", 35)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "shipped 35 lines" in out
