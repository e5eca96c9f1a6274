"""A sink that cannot be reached: clear words, one log line a second, nothing lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from hongbao.local.node_process import free_port
from hongbao.metrics.shipper import Shipper, shipped_dir
from hongbao.metrics.sinks import InfluxV1Sink, InfluxV2Sink, Sink
from tests.metrics.spoolfiles import FIRST_SECOND, server_points, spool

SINKS: dict[str, Callable[[str], Sink]] = {
    "influxdb1": lambda url: InfluxV1Sink(url, "hongbao"),
    "influxdb2": lambda url: InfluxV2Sink(url, "token", "org", "bucket"),
}


@pytest.mark.parametrize("kind", sorted(SINKS))
def test_unreachable_sink_logs_one_clear_line_per_second_and_keeps_the_spool(
        kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    spool(tmp_path, "server-h1-w0", server_points("run-u", 0, FIRST_SECOND, 30))
    shipper = Shipper(tmp_path, ["*.lp"], SINKS[kind](url), first_retry=0.01, max_retry=0.01)

    with caplog.at_level(logging.WARNING):
        assert not asyncio.run(shipper.flush(timeout=1.5))
        asyncio.run(shipper.sink.close())

    assert shipper.failures >= 20
    assert shipper.lines_shipped == 0
    assert shipper.lines_pending == 30
    assert not shipped_dir(tmp_path, shipper.sink).exists()
    assert "is unreachable" in (shipper.last_error or "")
    assert 1 <= len(caplog.records) <= 2
    for record in caplog.records:
        assert record.name == "hongbao.metrics.shipper"
        assert record.exc_info is None
        assert f"at {url}" in record.getMessage()
        assert "is unreachable" in record.getMessage()
        assert "30 lines stay spooled" in record.getMessage()
    if len(caplog.records) == 2:
        assert "more like this in the last" in caplog.records[1].getMessage()
