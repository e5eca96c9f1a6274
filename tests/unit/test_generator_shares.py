"""How a server node splits its generators among workers, and re-splits them when a
worker dies and comes back."""

from __future__ import annotations

from hongbao.server.commands import Retune, SetSendRate, SetShakeRate
from hongbao.server.generator_shares import GeneratorShares, id_floor


def test_a_setting_is_split_evenly_among_the_workers() -> None:
    shares = GeneratorShares(2)
    assert shares.start("shake", 200, 101, (), [0, 1]) == [
        (0, SetShakeRate(100, 51)), (1, SetShakeRate(100, 50))]


def test_while_a_worker_is_down_the_others_take_its_rate() -> None:
    shares = GeneratorShares(3)
    shares.start("shake", 300, 3000, (), [0, 1, 2])
    commands = shares.worker_died(1, {"shake": 400}, [0, 2])
    assert commands == [(0, Retune("shake", 150)), (2, Retune("shake", 150))]


def test_a_restarted_worker_owes_its_share_less_what_it_had_released() -> None:
    shares = GeneratorShares(2)
    shares.start("send", 50, 1000, (0, 99), [0, 1])
    shares.worker_died(1, {"send": 120}, [0])
    commands = shares.worker_back(1, [0, 1])
    assert commands == [(1, SetSendRate(25, 380, 0, 99)), (0, Retune("send", 25))]


def test_a_setting_made_while_a_worker_is_down_reaches_it_when_it_is_back() -> None:
    shares = GeneratorShares(2)
    shares.worker_died(1, {}, [0])
    assert shares.start("shake", 10, 100, (), [0]) == [(0, SetShakeRate(10, 50))]
    assert (1, SetShakeRate(5, 50)) in shares.worker_back(1, [0, 1])


def test_stopped_generators_are_not_retuned() -> None:
    shares = GeneratorShares(2)
    assert shares.worker_died(0, {}, [1]) == []


def test_a_restarted_worker_starts_past_every_id_its_predecessor_could_have_used() -> None:
    # reported next id 1000, 2 workers, at most 100/s for 1.5 s (+ one per step)
    floor = id_floor(1000, 2, 100, 1.5)
    assert floor >= 1000 + 2 * (150 + 75)
    assert (floor - 1000) % 2 == 0  # still this worker's ids
