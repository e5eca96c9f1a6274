"""Phase rows mean what they say: held QPS over the hold window only, connections and
time to connect for phase1, timeouts only for shakes that timed out, held or saturated."""

from __future__ import annotations

import io

from hongbao.metrics.histograms import LATENCY_MEASUREMENT, encode, new_histogram, record
from hongbao.metrics.lineprotocol import Point
from hongbao.report.console import phase_table, report_console
from hongbao.report.series import build_series
from hongbao.report.summary import summary
from hongbao.report.tables import money_balance, phase_cells, phase_rows

T0 = 1_800_000_000
TAGS = {"run_id": "r1", "host": "h1", "worker": "0"}


def mark(phase: str, event: str, at: int, qps: int = 0) -> Point:
    return Point("phase", {"run_id": "r1", "phase": phase, "host": "controller"},
                 {"event": event, "target_qps": qps, "target_connections": 1000}, at)


def second(at: int, connections: int, requests: int, responses: int, timeouts: int = 0,
           latency_us: int = 0) -> list[Point]:
    histogram = new_histogram()
    for _ in range(responses if latency_us else 0):
        record(histogram, latency_us)
    return [
        Point("server", TAGS, {"connections": connections, "requests": requests}, at),
        Point("client", TAGS, {"connections": connections, "requests": requests,
                               "responses": responses, "timeouts": timeouts}, at),
        Point(LATENCY_MEASUREMENT, {"run_id": "r1", "host": "h1"},
              {"histogram": encode(histogram)}, at),
    ]


def run_points() -> list[Point]:
    points = [mark("phase1", "start", T0), mark("phase1", "end", T0 + 4)]
    for i, conns in enumerate((300, 700, 1000, 1000)):  # phase1: 1,000 by its 3rd second
        points += second(T0 + i, conns, 0, 0)
    points += [mark("phase2", "start", T0 + 4, 100), mark("phase2", "hold_start", T0 + 6, 100),
               mark("phase2", "hold_end", T0 + 10, 100), mark("phase2", "end", T0 + 11, 100)]
    ramp = [(20, 20), (60, 60)]  # T0+4, T0+5: ramp, excluded
    hold = [(100, 100, 2_000)] * 3 + [(100, 90, 150_000)]  # T0+6..9: the held seconds
    for i, (sent, answered) in enumerate(ramp):
        points += second(T0 + 4 + i, 1000, sent, answered)
    for i, (sent, answered, us) in enumerate(hold):
        points += second(T0 + 6 + i, 1000, sent, answered, latency_us=us)
    points += second(T0 + 10, 1000, 30, 30)  # the end mark's second, excluded
    points += second(T0 + 11, 1000, 0, 0, timeouts=10)  # phase2's shakes expire after it
    return points


def test_phase_rows_use_the_hold_window_and_phase1_shows_connections() -> None:
    phase1, phase2 = phase_rows(build_series(run_points(), "r1"))
    assert (phase1.target_connections, phase1.connections, phase1.connect_seconds) == (
        1000, 1000, 3)
    assert phase1.status == "held" and phase1.limit is None
    assert phase2.hold_seconds == 4 and phase2.seconds == 7
    assert phase2.held_qps == 100.0  # the phase-long mean would be 610 / 7 = 87
    assert phase2.timeouts == 10
    assert phase2.answered_pct == 100 * (510 - 10) / 510  # all sent from start to the end
    assert phase2.p50_ms == 2.0 and phase2.p99_ms > 100  # 90 of 390 answers at 150 ms
    assert phase2.status == "saturated"
    assert "p99" in phase2.limit and "answered 98.039%" in phase2.limit


def test_shakes_answered_after_the_hold_window_are_not_counted_lost() -> None:
    """Seconds from a real knee step at 41 QPS: two answers came a tick late, one second
    past the hold window's end. Counting responses in the hold window made that 285 of
    287 (99.303%), saturated; no shake timed out, so every one was answered."""
    points = [mark("p", "start", T0, 41), mark("p", "hold_start", T0 + 1, 41),
              mark("p", "hold_end", T0 + 8, 41), mark("p", "end", T0 + 9, 41)]
    responses = [41, 41, 41, 41, 41, 41, 39, 41, 43, 41]  # T0 .. T0+9
    for i, answered in enumerate(responses):
        points += second(T0 + i, 1000, 41, answered, latency_us=1_000)
    (row,) = phase_rows(build_series(points, "r1"))
    assert row.sent == 287 and row.timeouts == 0 and row.answered_pct == 100.0
    assert row.status == "held" and row.limit is None


def test_summary_carries_the_rows_and_the_balance() -> None:
    series = build_series(run_points(), "r1")
    rows = phase_rows(series)
    content = summary("r1", rows, money_balance(series, None), {"scale": 0.1}, None)
    assert content["run_id"] == "r1" and content["scale"] == 0.1 and content["knee"] is None
    assert [p["name"] for p in content["phases"]] == ["phase1", "phase2"]
    assert content["phases"][1]["held_qps"] == 100.0
    assert content["phases"][1]["status"] == "saturated"
    assert content["balance"]["ok"] is True and content["memory"] is None


def test_connections_reached_in_the_end_marks_second_count() -> None:
    points = [mark("phase1", "start", T0), mark("phase1", "end", T0 + 2)]
    for i, conns in enumerate((300, 700, 1000)):  # the gate saw 1,000 during T0+2
        points += second(T0 + i, conns, 0, 0)
    [phase1] = phase_rows(build_series(points, "r1"))
    assert (phase1.connections, phase1.connect_seconds, phase1.status) == (1000, 3, "held")


def test_connect_seconds_count_to_the_second_the_server_held_them_for_good() -> None:
    # An earlier run's clients reconnected, then were stopped; this run's clients connect.
    points = [mark("phase1", "start", T0), mark("phase1", "end", T0 + 5)]
    for i, conns in enumerate((700, 1000, 100, 600, 1000, 1000)):
        points += second(T0 + i, conns, 0, 0)
    [phase1] = phase_rows(build_series(points, "r1"))
    assert (phase1.connections, phase1.connect_seconds) == (1000, 5)


def test_a_phase_whose_server_workers_stop_ticking_is_saturated_by_starvation() -> None:
    points = [mark("phase2", "start", T0, 100), mark("phase2", "hold_start", T0, 100),
              mark("phase2", "hold_end", T0 + 4, 100), mark("phase2", "end", T0 + 4, 100)]
    for i in range(5):
        points += second(T0 + i, 1000, 100, 100, latency_us=2_000)  # held, by the clients
        late = 3 if i == 2 else 0  # 3 server workers serve a backlog in the 3rd second
        points.append(Point("node", {"run_id": "r1", "host": "server", "role": "server"},
                            {"workers": 4, "workers_alive": 4 - late, "workers_late": late},
                            T0 + i))
    (row,) = phase_rows(build_series(points, "r1"))
    assert (row.held_qps, row.answered_pct) == (100.0, 100.0) and row.p99_ms < 100
    assert row.status == "saturated"
    assert row.limit == "control-plane starvation: up to 3 server workers too busy to tick"
    # their counts land after the window: the server's rate there is not known, not zero
    assert row.server_counts_late and phase_cells(row)[7] == "late"


def test_piped_output_shows_a_full_scale_row_uncut() -> None:
    points = [mark("phase2", "start", T0, 30_000), mark("phase2", "hold_start", T0, 30_000),
              mark("phase2", "hold_end", T0 + 2, 30_000), mark("phase2", "end", T0 + 2, 30_000)]
    for i in range(3):
        points += second(T0 + i, 1_000_000, 30_000, 5_694, timeouts=1_705_017,
                         latency_us=5_709_800)
    (row,) = phase_rows(build_series(points, "r1"))
    out = io.StringIO()
    report_console(file=out).print(phase_table([row]))  # a StringIO is no terminal: piped
    assert "…" not in out.getvalue(), out.getvalue()
    assert "1,000,000" in out.getvalue() and "saturated" in out.getvalue()
