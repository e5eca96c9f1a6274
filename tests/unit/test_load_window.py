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
