"""The client's connect window: TCP's additive increase and multiplicative decrease."""

from __future__ import annotations

from hongbao.client.connect_window import FLOOR, INITIAL, ConnectWindow


def test_prompt_logins_widen_it_by_one_each_up_to_the_limit() -> None:
    window = ConnectWindow(limit=INITIAL + 3, slow_login_s=5.0)
    assert window.size == INITIAL
    for _ in range(10):
        window.logged_in(round_trip_s=0.2, now=0.0)
    assert window.size == INITIAL + 3


def test_timeouts_halve_it_once_a_second_down_to_the_floor() -> None:
    window = ConnectWindow(limit=1000, slow_login_s=5.0)
    for _ in range(500):  # a burst of timeouts in one second is one signal
        window.congested(now=100.0)
    assert window.size == INITIAL // 2
    window.congested(now=101.0)
    assert window.size == INITIAL // 4
    for second in range(102, 120):
        window.congested(now=float(second))
    assert window.size == FLOOR


def test_a_slow_login_counts_as_congestion() -> None:
    window = ConnectWindow(limit=1000, slow_login_s=5.0)
    window.logged_in(round_trip_s=5.5, now=10.0)
    assert window.size == INITIAL // 2 and window.cuts == 1


def test_a_small_limit_bounds_the_start_and_the_floor() -> None:
    window = ConnectWindow(limit=3, slow_login_s=5.0)
    assert window.size == 3
    window.congested(now=0.0)
    window.congested(now=5.0)
    assert window.size == 3  # the floor is never above the limit
