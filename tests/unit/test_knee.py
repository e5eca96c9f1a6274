"""The knee step verdict: hosts' latency histograms merged exactly, counters summed, and
the phase table's rule (p99, answered share, rate held)."""

from __future__ import annotations

from typing import Any

import pytest

from hongbao.metrics.histograms import encode, new_histogram, record
from hongbao.plan import knee_steps
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


def test_shakes_still_in_flight_at_the_end_of_a_step_are_not_lost() -> None:
    verdict = step_verdict({"client01": window([1_000] * 100, 20_000, 19_950, timeouts=0)}, 1000)
    assert verdict["held"], verdict["line"]
    assert verdict["answered_pct"] == 100.0
