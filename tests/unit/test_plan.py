from __future__ import annotations

import pytest

from hongbao.plan import (
    FD_RESERVE,
    node_workers,
    plan_clients,
    plan_server,
    plan_targets,
    split_users,
    workers_for,
)


def test_seed_topology_splits_a_million_as_16_by_60k_and_40k() -> None:
    hosts = [f"client{i:02d}" for i in range(1, 18)]
    users = split_users(1_000_000, hosts, {"client17": 2 / 3})
    assert [users[h] for h in hosts] == [60_000] * 16 + [40_000]


def test_split_is_exact_and_ranges_are_contiguous() -> None:
    plan = plan_clients(100_003, ["a", "b", "c"], {}, fd_limit=20_000)
    assert sum(share.users for share in plan.values()) == 100_003
    assert [s.first_user for s in plan.values()] == [0, 33_335, 66_669]
    assert plan["a"].workers == 2  # 33,335 users over 19,800 per worker
    assert plan["a"].source_addresses_needed == 1


def test_empty_clients_group_is_named() -> None:
    with pytest.raises(ValueError, match="inventory group 'clients' is empty"):
        split_users(10, [], {})


def test_rates_split_exactly_in_proportion_to_users() -> None:
    hosts = [f"client{i:02d}" for i in range(1, 18)]
    plan = plan_clients(1_000_000, hosts, {"client17": 2 / 3}, 1_100_000,
                        {"phase2": 30_000, "phase3": 60_000})
    assert sum(s.qps["phase2"] for s in plan.values()) == 30_000
    assert plan["client01"].qps["phase3"] == 3600 and plan["client17"].qps["phase3"] == 2400


def test_targets_scale_the_seed_and_size_the_phase_totals() -> None:
    targets = plan_targets(0.1, 60, 200.0, 50.0)
    assert targets.connections == 100_000
    assert targets.qps == {"phase1": 0, "phase2": 3000, "phase3": 6000}
    assert (targets.shake_total, targets.send_total) == (12_000, 3000)
    assert targets.knee_steps[:3] == [188, 263, 368] and len(targets.knee_steps) == 12
    assert targets.knee_steps_below == [134, 96, 69, 49, 35]
    # the middle of each two neighbouring steps, 35 ... 134, 188, 263, ...
    assert targets.knee_steps_between[:7] == [41, 58, 81, 113, 159, 222, 311]
    assert len(targets.knee_steps_between) == 5 + 12 - 1
    assert plan_targets(0.1, 60, 200.0, 50.0, knee_max_steps=2).knee_steps == [188, 263]
    with pytest.raises(ValueError, match="scale must be > 0 and <= 10"):
        plan_targets(0, 60, 200.0, 50.0)


def test_server_workers_cover_the_connections_within_the_host_limit() -> None:
    # SO_REUSEPORT's hash spreads unevenly: each worker is sized to 95% of its room
    assert plan_server(1_000_000, 20_000, None, 256).workers == 54
    with pytest.raises(ValueError, match="need 54 server workers"):
        plan_server(1_000_000, 20_000, 10, 256)
    with pytest.raises(ValueError, match="over the limit of 40 processes per host"):
        plan_server(1_000_000, 20_000, None, 40)


def test_workers_hold_the_connections_under_the_open_files_limit_less_the_reserve() -> None:
    per_worker = 1000 - FD_RESERVE
    assert workers_for(per_worker, limit=1000) == 1
    assert workers_for(per_worker + 1, limit=1000) == 2
    assert workers_for(0, limit=1000, minimum=4) == 4


def test_a_limit_inside_the_reserve_is_named() -> None:
    with pytest.raises(ValueError, match="open-files limit 200 leaves no room"):
        workers_for(1, limit=FD_RESERVE)


def test_a_node_takes_auto_workers_or_checks_the_count_it_was_given() -> None:
    assert node_workers(None, 1601, minimum=1, limit=1000) == 3
    assert node_workers(2, 1600, minimum=1, limit=1000) == 2
    with pytest.raises(ValueError, match="1601 connections do not fit 2 workers x 800"):
        node_workers(2, 1601, minimum=1, limit=1000)
