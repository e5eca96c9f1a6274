from __future__ import annotations

import random

from hongbao.backoff import capped_exponential, jittered


def test_delays_double_from_the_first_and_stop_at_the_cap() -> None:
    assert [capped_exponential(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert capped_exponential(0, 0.5, 3.0) == 0.5


def test_jitter_stays_within_half_and_one_and_a_half_times_and_spreads() -> None:
    rng = random.Random(1)
    delays = [jittered(2.0, rng) for _ in range(1000)]
    assert all(1.0 <= d < 3.0 for d in delays)
    assert max(delays) - min(delays) > 1.5
