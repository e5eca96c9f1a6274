from __future__ import annotations

import logging

import pytest

from hongbao.metrics.ratelimitedlog import RateLimitedLog


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_and_the_next_counts_what_was_held_back(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    limited = RateLimitedLog(logging.getLogger("test.limited"), interval=1.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.limited"):
        for _ in range(10):  # four tries a second for 2.5 s
            limited.log("down", logging.WARNING, "sink down")
            clock.now += 0.25
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "sink down",
        "sink down (3 more like this in the last 1 s)",
        "sink down (3 more like this in the last 1 s)",
    ]


def test_kinds_are_limited_separately(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("test.kinds"), clock=ManualClock())
    with caplog.at_level(logging.WARNING, logger="test.kinds"):
        assert limited.log("down", logging.WARNING, "sink down")
        assert limited.log("rejected", logging.ERROR, "line rejected")
        assert not limited.log("down", logging.WARNING, "sink down")
    assert [r.getMessage() for r in caplog.records] == ["sink down", "line rejected"]


def test_a_message_made_by_a_callable_is_made_only_for_a_line_that_goes_out(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    limited = RateLimitedLog(logging.getLogger("test.lazy"), interval=1.0, clock=clock)
    made: list[float] = []

    def message() -> str:
        made.append(clock.now)
        return "sends wait"

    with caplog.at_level(logging.WARNING, logger="test.lazy"):
        for _ in range(6):  # every 0.4 s: lines at 100.0 and 101.2 only
            limited.log("short", logging.WARNING, message)
            clock.now += 0.4
    assert made == [100.0, pytest.approx(101.2)]
    assert [r.getMessage() for r in caplog.records] == [
        "sends wait", "sends wait (2 more like this in the last 1 s)"]
