"""The knee step verdict: hosts' latency histograms merged exactly, counters summed, and
the phase table's rule (p99, answered share, rate held)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from hongbao.cli import main
from hongbao.metrics.histograms import encode, new_histogram, record
from hongbao.plan import knee_steps, knee_steps_below, knee_steps_between, next_knee_step
from hongbao.report.knee import step_verdict


def window(latencies_us: list[int], requests: int, responses: int,
           seconds: float = 20.0, timeouts: int | None = None) -> dict[str, Any]:
    histogram = new_histogram()
    for value in latencies_us:
        record(histogram, value)
    lost = requests - responses if timeouts is None else timeouts
    return {"window": {"qps": 0, "since": 0.0, "seconds": seconds, "requests": requests,
                       "responses": responses, "timeouts": lost,
                       "send_skipped": 0, "histogram": encode(histogram)}}


def test_a_step_holds_when_every_rule_holds() -> None:
    verdict = step_verdict({"client01": window([2_000] * 990 + [50_000] * 10, 20_000, 20_000),
                            "client02": window([3_000] * 1000, 20_000, 20_000)}, 2000)
    assert verdict["held"] and verdict["limit"] is None
    assert verdict["held_qps"] == 2000.0
    assert verdict["p99_ms"] == pytest.approx(3.0, rel=0.01)


def test_the_merged_p99_decides_not_the_worst_hosts() -> None:
    # client01 alone has a p99 of 200 ms (2% slow); merged with client02, 0.5% are slow.
    verdict = step_verdict({"client01": window([2_000] * 980 + [200_000] * 20, 20_000, 20_000),
                            "client02": window([2_000] * 3000, 20_000, 20_000)}, 2000)
    assert verdict["held"], verdict["line"]
    assert verdict["p99_ms"] == pytest.approx(2.0, rel=0.01)


def test_unanswered_shakes_and_a_rate_not_held_saturate_a_step() -> None:
    verdict = step_verdict({"client01": window([1_000] * 100, 20_000, 19_900)}, 1000)
    # 100 of 20,000 timed out (window() sets timeouts = requests - responses)
    assert not verdict["held"]
    assert "answered 99.500% < 99.9%" in verdict["limit"]
    lagging = step_verdict({"client01": window([1_000] * 100, 18_000, 18_000)}, 1000)
    assert lagging["limit"] == "held 900 of 1,000 QPS"


def test_knee_steps_rise_by_the_factor_up_to_the_maximum() -> None:
    assert knee_steps(1000, 1.5, 4000) == [1000, 1500, 2250, 3375, 4000]
    assert knee_steps(1000, 1.5, 4000, max_steps=3) == [1000, 1500, 2250]
    with pytest.raises(ValueError):
        knee_steps(1000, 1.0, 4000)
    with pytest.raises(ValueError, match="at least one step"):
        knee_steps(1000, 1.5, 4000, max_steps=0)


def test_knee_steps_below_fall_by_the_factor_and_stop_at_one() -> None:
    assert knee_steps_below(1875, 1.4, 5) == [1339, 956, 683, 488, 349]
    assert knee_steps_below(3, 1.4, 5) == [2, 1]
    assert knee_steps_below(1, 1.4, 5) == []


def test_the_steps_between_are_the_geometric_middles_of_neighbouring_steps() -> None:
    assert knee_steps_between([100, 140, 196, 71, 51]) == [60, 84, 118, 166]
    assert knee_steps_between([14118, 10084, 19765]) == [11932, 16705]
    assert knee_steps_between([1, 2, 3]) == []  # no whole QPS fits between
    assert knee_steps_between([5]) == []


RISING = [100, 140, 196]
BELOW = [71, 51]
BETWEEN = knee_steps_between([*RISING, *BELOW])


def tried(*steps: tuple[int, bool]) -> list[dict[str, Any]]:
    return [{"qps": qps, "held": held} for qps, held in steps]


def test_the_search_climbs_while_steps_hold_and_stops_at_the_first_saturated() -> None:
    assert next_knee_step(RISING, BELOW, []) == 100
    assert next_knee_step(RISING, BELOW, tried((100, True))) == 140
    assert next_knee_step(RISING, BELOW, tried((100, True), (140, False))) is None
    assert next_knee_step(RISING, BELOW, tried((100, True), (140, True), (196, True))) is None


def test_when_the_first_step_saturates_the_search_walks_down_until_one_holds() -> None:
    assert next_knee_step(RISING, BELOW, tried((100, False))) == 71
    assert next_knee_step(RISING, BELOW, tried((100, False), (71, False))) == 51
    assert next_knee_step(RISING, BELOW, tried((100, False), (71, True))) is None
    assert next_knee_step(RISING, BELOW, tried((100, False), (71, False), (51, False))) is None


def test_once_a_held_and_a_saturated_step_bracket_the_knee_one_step_between_ends_it() -> None:
    # climbing: 100 and 140 held, 196 saturated -> 166, then over whatever it shows
    assert next_knee_step(RISING, BELOW, tried((100, True), (140, True), (196, False)),
                          BETWEEN) == 166
    for verdict in (True, False):
        assert next_knee_step(RISING, BELOW, tried((100, True), (140, True), (196, False),
                                                   (166, verdict)), BETWEEN) is None
    # walking down: 100 and 71 saturated, 51 held -> 60
    assert next_knee_step(RISING, BELOW, tried((100, False), (71, False), (51, True)),
                          BETWEEN) == 60
    assert next_knee_step(RISING, BELOW, tried((100, False), (71, False), (51, True),
                                               (60, False)), BETWEEN) is None
    # no bracket, no step between: every rising step held, or none held
    assert next_knee_step(RISING, BELOW, tried((100, True), (140, True), (196, True)),
                          BETWEEN) is None
    assert next_knee_step(RISING, BELOW, tried((100, False), (71, False), (51, False)),
                          BETWEEN) is None


def test_knee_next_reads_the_search_from_stdin_and_rejects_bad_input_in_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    search = {"rising": RISING, "below": BELOW, "verdicts": tried((100, False))}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(search)))
    assert main(["knee", "next"]) == 0
    assert json.loads(capsys.readouterr().out) == {"next": 71}
    search = {**search, "between": BETWEEN, "verdicts": tried((100, False), (71, True))}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(search)))
    assert main(["knee", "next"]) == 0
    assert json.loads(capsys.readouterr().out) == {"next": 84}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"rising": [100], "verdicts": []}'))
    assert main(["knee", "next"]) == 2
    assert capsys.readouterr().err.strip() == (
        "hongbao knee: error: stdin has no 'below': it must be a JSON object with the lists "
        "'rising', 'below' (QPS) and 'verdicts', and maybe 'between'")


def test_shakes_still_in_flight_at_the_end_of_a_step_are_not_lost() -> None:
    verdict = step_verdict({"client01": window([1_000] * 100, 20_000, 19_950, timeouts=0)}, 1000)
    assert verdict["held"], verdict["line"]
    assert verdict["answered_pct"] == 100.0
