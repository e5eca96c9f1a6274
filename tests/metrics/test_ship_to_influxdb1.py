"""Shipping spooled points into a real InfluxDB 1.6 (the ``influxdb`` fixture)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from hongbao.local.phases import mark_phase
from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import run_points
from hongbao.metrics.shipper import Shipper, shipped_dir
from hongbao.metrics.sinks import InfluxV1Sink, SinkUnavailable
from tests.conftest import InfluxDBServer
from tests.metrics.spoolfiles import FIRST_SECOND, server_point, server_points, spool

FAST = {"poll_interval": 0.05, "first_retry": 0.05, "max_retry": 0.2}


def _sink(influxdb: InfluxDBServer, database: str) -> InfluxV1Sink:
    return InfluxV1Sink(influxdb.url, database)


def _stored_seconds(influxdb: InfluxDBServer, database: str, worker: int) -> list[int]:
    rows = influxdb.query(f"SELECT requests FROM server WHERE worker = '{worker}'", database)
    return [row["time"] for row in rows]


def test_shipped_run_reads_back_with_exact_sums(influxdb: InfluxDBServer,
                                                 tmp_path: Path) -> None:
    database = "exact_sums"
    for worker in range(3):
        spool(tmp_path, f"server-h1-w{worker}",
              server_points("run-a", worker, FIRST_SECOND + worker, 400))
    mark_phase(tmp_path, "run-a", "phase2", "start", "h1", target_qps=30000, at=FIRST_SECOND)
    expected = list(run_points(tmp_path))

    shipper = Shipper(tmp_path, ["*.lp"], _sink(influxdb, database), batch_lines=500)
    assert shipper.ship_all(timeout=20)

    assert shipper.lines_shipped == len(expected) == 1201
    assert shipper.lines_pending == 0
    for worker in range(3):
        mine = [p for p in expected if p.tags.get("worker") == str(worker)]
        rows = influxdb.query(
            f"SELECT sum(requests) AS requests, sum(won_amount) AS won_amount, count(won) AS n"
            f" FROM server WHERE run_id = 'run-a' AND worker = '{worker}'", database)
        assert rows[0]["requests"] == sum(p.fields["requests"] for p in mine)
        assert rows[0]["won_amount"] == sum(p.fields["won_amount"] for p in mine)
        assert rows[0]["n"] == 400
    phase = influxdb.query("SELECT event, target_qps FROM phase", database)
    assert phase == [{"time": FIRST_SECOND, "event": "start", "target_qps": 30000}]


def test_outage_replays_every_second_exactly_once(influxdb: InfluxDBServer,
                                                  tmp_path: Path) -> None:
    """Points written while InfluxDB is down wait in the file; after the restart every
    second is stored once: no gap, and no line sent twice."""
    database = "outage"
    path = spool(tmp_path, "server-h1-w0", [])
    shipper = Shipper(tmp_path, ["server-h1-*.lp"], _sink(influxdb, database), **FAST)
    written: list[Point] = []

    def write_seconds(count: int) -> None:
        points = [server_point("run-o", 0, FIRST_SECOND + len(written) + i)
                  for i in range(count)]
        spool(tmp_path, "server-h1-w0", points)
        written.extend(points)

    async def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 15) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
            await asyncio.sleep(0.02)

    async def scenario() -> bool:
        stop = asyncio.Event()
        task = asyncio.create_task(shipper.run(stop))
        try:
            write_seconds(30)
            await wait_until("first seconds shipped", lambda: shipper.lines_shipped == 30)
            await asyncio.to_thread(influxdb.stop)
            for _ in range(10):  # ten 'seconds' of points during the outage
                write_seconds(6)
                await asyncio.sleep(0.03)
            await wait_until("outage lines counted", lambda: shipper.lines_pending == 60)
            failures = shipper.failures
            await wait_until("more failed retries", lambda: shipper.failures > failures)
            assert shipper.lines_shipped == 30
            await asyncio.to_thread(influxdb.start)
            write_seconds(10)
            await wait_until("spool replayed", lambda: shipper.lines_shipped == 100)
        finally:
            influxdb.start()
            stop.set()
        return await task

    assert asyncio.run(scenario())
    assert shipper.lines_shipped == len(written) == 100
    assert shipper.lines_pending == 0 and shipper.lines_dropped == 0
    assert _stored_seconds(influxdb, database, 0) == [p.time for p in written]
    assert path.stat().st_size == int(
        (shipped_dir(tmp_path, shipper.sink) / f"{path.name}.offset").read_text())


def test_offsets_persist_so_a_new_shipper_sends_only_new_lines(influxdb: InfluxDBServer,
                                                               tmp_path: Path) -> None:
    database = "resume"
    spool(tmp_path, "server-h1-w0", server_points("run-r", 0, FIRST_SECOND, 50))
    assert Shipper(tmp_path, ["*.lp"], _sink(influxdb, database)).ship_all(timeout=10)

    spool(tmp_path, "server-h1-w0", server_points("run-r", 0, FIRST_SECOND + 50, 20))
    resumed = Shipper(tmp_path, ["*.lp"], _sink(influxdb, database))
    assert resumed.ship_all(timeout=10)
    assert resumed.lines_shipped == 20
    assert _stored_seconds(influxdb, database, 0) == list(range(FIRST_SECOND,
                                                                FIRST_SECOND + 70))


def test_replay_after_a_crash_before_the_offset_save_stores_nothing_twice(
        influxdb: InfluxDBServer, tmp_path: Path) -> None:
    database = "idempotent"
    points = server_points("run-i", 0, FIRST_SECOND, 120)
    spool(tmp_path, "server-h1-w0", points)
    first = Shipper(tmp_path, ["*.lp"], _sink(influxdb, database))
    assert first.ship_all(timeout=10)
    # The crash: the batch reached InfluxDB but the offset was never saved.
    for offset_file in shipped_dir(tmp_path, first.sink).iterdir():
        offset_file.write_text("0\n")

    replay = Shipper(tmp_path, ["*.lp"], _sink(influxdb, database))
    assert replay.ship_all(timeout=10)
    assert replay.lines_shipped == 120
    rows = influxdb.query("SELECT count(requests) AS n, sum(requests) AS total FROM server",
                          database)
    assert rows[0]["n"] == 120
    assert rows[0]["total"] == sum(p.fields["requests"] for p in points)


def test_refused_lines_are_dropped_and_counted_while_good_lines_get_in(
        influxdb: InfluxDBServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = "refused"
    good = server_points("run-x", 0, FIRST_SECOND, 40)
    spool(tmp_path, "server-h1-w0", good[:20])
    with (tmp_path / "metrics" / "server-h1-w0.lp").open("a") as handle:
        handle.write("server,host=h1,worker=0 requests=\"text\" 1750000100\n")  # type conflict
        handle.write("a line cut by a crash\n")
    spool(tmp_path, "server-h1-w0", good[20:])

    shipper = Shipper(tmp_path, ["*.lp"], _sink(influxdb, database))
    with caplog.at_level(logging.ERROR, logger="hongbao.metrics.shipper"):
        assert shipper.ship_all(timeout=20)

    assert shipper.lines_dropped == 2
    assert shipper.lines_shipped == 40
    assert _stored_seconds(influxdb, database, 0) == [p.time for p in good]
    refusals = [r.getMessage() for r in caplog.records]
    assert refusals and "field type conflict" in refusals[0]
    assert all("HTTP 400" in message for message in refusals)


def test_a_dropped_database_is_created_again(influxdb: InfluxDBServer) -> None:
    database = "recreated"
    sink = _sink(influxdb, database)

    async def write_drop_write() -> None:
        await sink.write([b"m v=1i 1750000000"])
        influxdb.query(f'DROP DATABASE "{database}"', database)
        with pytest.raises(SinkUnavailable, match="database not found"):
            await sink.write([b"m v=2i 1750000001"])
        await sink.write([b"m v=3i 1750000002"])
        await sink.close()

    asyncio.run(write_drop_write())
    assert [row["v"] for row in influxdb.query("SELECT v FROM m", database)] == [3]


def test_points_of_other_hosts_are_not_shipped(influxdb: InfluxDBServer,
                                               tmp_path: Path) -> None:
    database = "patterns"
    spool(tmp_path, "server-h1-w0", server_points("run-p", 0, FIRST_SECOND, 5))
    spool(tmp_path, "server-h2-w0", server_points("run-p", 1, FIRST_SECOND, 7))
    shipper = Shipper(tmp_path, ["server-h1-*.lp"], _sink(influxdb, database))
    assert shipper.ship_all(timeout=10)
    workers = Counter(row["worker"] for row in influxdb.query(
        "SELECT requests, worker FROM server", database))
    assert workers == {"0": 5}
