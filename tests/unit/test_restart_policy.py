"""When a node restarts a dead worker, and when it gives up."""

from __future__ import annotations

from hongbao.node.restart_policy import RestartPolicy


def test_backoff_doubles_per_worker_and_is_capped() -> None:
    policy = RestartPolicy(first_delay_s=1, max_delay_s=5, max_restarts_in_window=10)
    assert [policy.delay(0, t) for t in range(5)] == [1, 2, 4, 5, 5]
    assert policy.delay(1, 5) == 1  # another worker starts from the first delay


def test_backoff_starts_over_once_the_window_has_passed() -> None:
    policy = RestartPolicy(first_delay_s=1, window_s=60)
    assert policy.delay(0, 0) == 1
    assert policy.delay(0, 10) == 2
    assert policy.delay(0, 100) == 1


def test_more_than_five_restarts_in_sixty_seconds_gives_up() -> None:
    policy = RestartPolicy()
    assert all(policy.delay(i % 2, 10 * i) is not None for i in range(5))
    assert policy.delay(0, 55) is None


def test_restarts_spread_over_more_than_the_window_go_on() -> None:
    policy = RestartPolicy()
    assert all(policy.delay(0, 13 * i) is not None for i in range(20))
