"""Clock agreement: `hongbao clock record` turns chrony's tracking line into a point of
the run; the report states each host's offset and flags those over 5 ms."""

from __future__ import annotations

from pathlib import Path

import pytest

from hongbao.cli import main
from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import run_points
from hongbao.report.series import build_series
from hongbao.report.tables import clock_agreement

# chronyc -c tracking: ref id, ref name, stratum, ref time, system time (s), last offset...
TRACKING = "C612000B,198.18.0.11,3,1796280000.5,-0.007250000,0.000001,0.000002,-6.1,0.01,0.1," \
           "0.000012,0.000034,64.2,Normal"


def record(run_dir: Path, *args: str) -> int:
    """``hongbao clock record`` in this process: its exit code."""
    return main(["clock", "record", "--run-id", "r1", "--run-dir", str(run_dir), *args])


def test_offsets_are_recorded_and_a_host_over_5_ms_is_flagged(tmp_path: Path) -> None:
    assert record(tmp_path, "--host-name", "client01", "--tracking", TRACKING) == 0
    assert record(tmp_path, "--host-name", "server", "--offset-ms", "0.4") == 0
    load = Point("server", {"run_id": "r1", "host": "server", "worker": "0"},
                 {"requests": 1}, 1_800_000_000)
    clock = clock_agreement(build_series([*run_points(tmp_path), load], "r1"))
    assert clock is not None
    assert clock.offsets_ms == {"client01": -7.25, "server": 0.4}
    assert not clock.ok and list(clock.off) == ["client01"]


def test_a_line_that_is_not_chronys_is_one_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = record(tmp_path, "--host-name", "client01", "--tracking", "506 Cannot talk")
    error = capsys.readouterr().err
    assert code == 2
    assert "not a line of 'chronyc -c tracking'" in error
    assert len(error.strip().splitlines()) == 1
