"""The pacing rule of DESIGN §4: exactly Q senders a second, each user once a period."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hongbao.pacing import Pacer, SteadyRate, StepGrid, split_count


def test_whole_period_sends_exactly_q_every_second_and_each_user_once_per_period() -> None:
    pacer = Pacer(users=1000, qps=50)
    assert pacer.period == 20
    for start in (0, 1_700_000_000):
        seen: Counter[int] = Counter()
        for t in range(start, start + 20):
            senders = pacer.senders(t)
            assert len(senders) == 50
            assert len(set(senders)) == 50
            seen.update(senders)
        assert set(seen) == set(range(1000))
        assert set(seen.values()) == {1}


def test_whole_period_is_the_famous_modulo_rule() -> None:
    pacer = Pacer(users=1_000_000, qps=50_000)
    for t in (0, 7, 1_700_000_013):
        assert all(u % 20 == t % 20 for u in pacer.senders(t)[:1000])
        assert pacer.sends_in(t % 20, t)
        assert not pacer.sends_in(t % 20 + 1, t)


@pytest.mark.parametrize(("users", "qps"), [(1000, 30), (1000, 300), (997, 50), (10, 3)])
def test_non_whole_period_sends_exactly_q_and_spreads_users_evenly(users: int, qps: int) -> None:
    pacer = Pacer(users, qps)
    cycle = users // math.gcd(users, qps)  # seconds until the window returns to its start
    seen: Counter[int] = Counter()
    for t in range(cycle):
        senders = pacer.senders(t)
        assert len(senders) == qps
        assert len(set(senders)) == qps
        seen.update(senders)
    assert set(seen) == set(range(users))
    assert set(seen.values()) == {qps // math.gcd(users, qps)}


@given(st.integers(1, 400), st.integers(1, 450), st.integers(0, 10**9))
def test_sends_in_agrees_with_senders(users: int, qps: int, t: int) -> None:
    pacer = Pacer(users, qps)
    senders = set(pacer.senders(t))
    assert senders == {u for u in range(users) if pacer.sends_in(u, t)}
    assert len(senders) == min(users, qps)


def test_perm_spreads_neighbouring_ids() -> None:
    pacer = Pacer(1000, 30)
    gaps = [abs(pacer.perm(u + 1) - pacer.perm(u)) for u in range(999)]
    assert min(gaps) > 100


def test_zero_rate_sends_nothing() -> None:
    assert Pacer(1000, 0).senders(5) == []


def test_split_count_sums_and_balances() -> None:
    assert split_count(10, 3) == [4, 3, 3]
    assert sum(split_count(60_000, 17)) == 60_000


def test_steady_rate_releases_evenly_and_stops_at_total() -> None:
    rate = SteadyRate(rate=200, total=500, started_at=100.0)
    assert rate.due(100.0) == 1
    assert rate.due(100.5) == 100
    assert rate.due(101.0) == 100
    assert rate.due(200.0) == 299
    assert rate.done
    assert rate.due(300.0) == 0


def test_steady_rate_with_a_limit_slips_instead_of_bursting() -> None:
    rate = SteadyRate(rate=1000, total=10_000, started_at=100.0)
    assert rate.due(100.0, limit=40) == 1
    assert rate.due(110.0, limit=40) == 40  # ten seconds behind: one step's worth, no burst
    assert rate.due(110.0, limit=40) == 0  # the schedule slipped to now
    assert rate.due(110.5, limit=600) == 500  # and goes on at the rate from there


def test_steady_rate_limit_never_loses_part_of_the_total() -> None:
    rate = SteadyRate(rate=50, total=100, started_at=0.0)
    released = sum(rate.due(t / 10, limit=2) for t in range(0, 1000, 7))
    assert released == 100 and rate.done


def test_steady_rate_retune_keeps_what_was_released_and_changes_the_pace() -> None:
    rate = SteadyRate(rate=100, total=1000, started_at=0.0)
    assert rate.due(1.0) == 101
    rate.retune(200, 1.0)
    assert rate.due(1.0) == 0
    assert rate.due(2.0) == 200
    assert rate.released == 301 and rate.total == 1000


def test_step_grid_releases_a_second_in_even_batches_at_its_offset() -> None:
    grid = StepGrid(25, offset=0.01)
    assert [grid.due(7, 7 + t, 50) for t in (0.0, 0.01, 0.0499, 0.05, 0.96, 0.97)] == [
        0, 2, 2, 4, 48, 50]
    assert grid.intended(7, 0, 50) == pytest.approx(7.01)
    assert grid.intended(7, 3, 50) == pytest.approx(7.05)
    assert grid.intended(7, 49, 50) == pytest.approx(7.97)
    assert grid.next_after(7.0) == pytest.approx(7.01)
    assert grid.next_after(7.01) == pytest.approx(7.05)
    assert grid.next_after(7.995) == pytest.approx(8.01)


@given(st.integers(1, 100), st.integers(0, 10**6), st.integers(1, 5000),
       st.floats(0, 0.99999))
def test_step_grid_due_only_grows_and_ends_with_every_item(
        per_second: int, key: int, count: int, into: float) -> None:
    grid = StepGrid.spread(per_second, key)
    assert 0 <= grid.offset < grid.step
    due = [grid.due(3, 3 + t, count) for t in sorted({0.0, into, 0.999999})]
    assert due == sorted(due) and due[0] >= 0 and due[-1] == count
    assert grid.next_after(3 + into) > 3 + into


@pytest.mark.parametrize("workers", [3, 17, 51, 104])
def test_spread_grids_of_many_workers_fall_evenly_over_the_step(workers: int) -> None:
    offsets = sorted(StepGrid.spread(25, ordinal).offset * 25 for ordinal in range(workers))
    gaps = [b - a for a, b in itertools.pairwise([*offsets, offsets[0] + 1])]
    assert max(gaps) < 2 / workers  # within twice an even share of the step


def test_step_grid_rejects_an_offset_outside_the_step() -> None:
    with pytest.raises(ValueError, match="within one step"):
        StepGrid(25, offset=0.04)
