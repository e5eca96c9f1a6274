"""A client host's load window: only whole seconds after the rate change count."""

from __future__ import annotations

import pytest

from hongbao.client import load_window
from hongbao.client.load_window import LoadWindow
from hongbao.metrics.histograms import encode, merge_encoded, new_histogram, record
from tests.unit.fakes import FakeClock


def one_sample(microseconds: int) -> str:
    histogram = new_histogram()
    record(histogram, microseconds)
    return encode(histogram)


def test_the_window_counts_the_seconds_after_the_change_and_their_latency(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(100.5)
    monkeypatch.setattr(load_window, "time", clock)
    window = LoadWindow()
    window.add_status(0, 99, {"requests": 20, "responses": 20}, one_sample(900))
    window.restart(30)  # mid-second 100: the window starts at 102, when the rate surely holds
    window.add_status(0, 100, {"requests": 40, "responses": 40}, one_sample(7_000))
    window.add_status(0, 101, {"requests": 50, "responses": 50}, one_sample(5_000))
    window.add_status(0, 102, {"requests": 80, "responses": 79}, one_sample(1_000))
    window.add_status(1, 102, {"requests": 30, "responses": 30}, one_sample(2_000))
    window.add_status(0, 103, {"requests": 110, "responses": 109}, one_sample(3_000))
    status = window.as_status()
    assert (status["qps"], status["since"], status["seconds"]) == (30, 102, 2)
    # worker 0: 30 + 30 requests; worker 1 was first seen in the window: all 30 count
    assert (status["requests"], status["responses"]) == (90, 89)
    merged = merge_encoded([status["histogram"]])
    assert merged.get_total_count() == 3 and merged.get_max_value() < 4_000


def test_a_restarted_worker_counts_from_zero_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_window, "time", FakeClock(10.0))
    window = LoadWindow()
    window.add_status(0, 12, {"requests": 500}, None)
    window.add_status(0, 13, {"requests": 20}, None)  # a new process: its counters restarted
    assert window.as_status()["requests"] == 520


def test_a_bounded_read_counts_only_the_held_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A knee step is read after its hold: the seconds of the read itself stay out."""
    monkeypatch.setattr(load_window, "time", FakeClock(200.0))
    window = LoadWindow()
    window.restart(100)  # the window starts at 202
    for second, latency in ((202, 9_000), (203, 1_000), (204, 2_000), (205, 800_000)):
        window.add_status(0, second, {"requests": 100 * (second - 201)}, one_sample(latency))
    held = window.as_status(since=203, until=205)
    assert (held["since"], held["seconds"], held["requests"]) == (203, 2, 200)
    merged = merge_encoded([held["histogram"]])
    assert merged.get_total_count() == 2 and merged.get_max_value() < 3_000
    assert window.as_status()["seconds"] == 4  # unbounded: every second since the change
    # a bound before the change counts from the change on
    assert window.as_status(since=150, until=204)["since"] == 202


def test_old_seconds_stay_in_the_whole_window_but_not_in_a_bounded_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_window, "time", FakeClock(0.0))
    monkeypatch.setattr(load_window, "KEPT_SECONDS", 3)
    window = LoadWindow()
    for second in range(1, 6):
        window.add_status(0, second, {"requests": 10 * second}, one_sample(1_000))
    whole = window.as_status()
    assert (whole["seconds"], whole["requests"]) == (5, 50)
    assert merge_encoded([whole["histogram"]]).get_total_count() == 5
    bounded = window.as_status(since=1, until=10)
    assert (bounded["since"], bounded["seconds"], bounded["requests"]) == (3, 3, 30)


def test_repeated_whole_reads_count_each_histogram_once_even_one_that_came_late(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_window, "time", FakeClock(0.0))
    monkeypatch.setattr(load_window, "KEPT_SECONDS", 2)
    window = LoadWindow()
    window.add_status(0, 1, {"requests": 1}, one_sample(1_000))
    window.add_status(0, 2, {"requests": 2}, one_sample(1_000))
    assert merge_encoded([window.as_status()["histogram"]]).get_total_count() == 2
    window.add_status(1, 2, {"requests": 1}, one_sample(5_000))  # worker 1, a tick late
    assert merge_encoded([window.as_status()["histogram"]]).get_total_count() == 3
    window.add_status(0, 3, {"requests": 3}, one_sample(1_000))  # second 1 is dropped
    window.add_status(0, 4, {"requests": 4}, one_sample(1_000))  # and second 2
    whole = window.as_status()
    assert (whole["seconds"], whole["requests"]) == (4, 5)
    assert merge_encoded([whole["histogram"]]).get_total_count() == 5
    assert merge_encoded([window.as_status(since=3)["histogram"]]).get_total_count() == 2
