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
    """``hongbao clock record`` in this process (the CLI's own parsing and errors)."""
    try:
        return main(["clock", "record", "--run-id", "r1", "--run-dir", str(run_dir), *args])
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_offsets_are_recorded_and_a_host_over_5_ms_is_flagged(tmp_path: Path) -> None:
    assert record(tmp_path, "--tracking", f"client01={TRACKING}", "--offset-ms", "server=0.4") == 0
    load = Point("server", {"run_id": "r1", "host": "server", "worker": "0"},
                 {"requests": 1}, 1_800_000_000)
    clock = clock_agreement(build_series([*run_points(tmp_path), load], "r1"))
    assert clock is not None
    assert clock.offsets_ms == {"client01": -7.25, "server": 0.4}
    assert not clock.ok and list(clock.off) == ["client01"]


def test_one_command_records_every_hosts_offset_at_one_second(tmp_path: Path) -> None:
    hosts = [f"client{index:02d}" for index in range(1, 18)]
    assert record(tmp_path, *(arg for host in hosts for arg in ("--tracking", f"{host}={TRACKING}"))
                  ) == 0
    points = list(run_points(tmp_path))
    assert sorted(point.tags["host"] for point in points) == hosts
    assert len({point.time for point in points}) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--tracking", f"client02={TRACKING}", "--tracking", "client01=506 Cannot talk"],
     "--tracking of client01: not a line of 'chronyc -c tracking'"),
    (["--offset-ms", "server=fast"], "--offset-ms of server: not an offset in ms: 'fast'"),
    (["--tracking", TRACKING], "--tracking takes HOST=VALUE"),
    ([], "give --tracking HOST=LINE"),
])
def test_bad_input_is_one_clear_error_and_records_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
        message: str) -> None:
    assert record(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not list(run_points(tmp_path))
