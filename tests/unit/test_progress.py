"""Phase 1 progress: done only when the server holds the target and every user is logged
in; a client host whose logins stop moving is named once it has stalled long enough."""

from __future__ import annotations

from typing import Any

from hongbao.progress import STALL_AFTER_S, connect_progress


def statuses(held: int, client01: int, client02: int) -> dict[str, dict[str, Any]]:
    def client(logged_in: int) -> dict[str, Any]:
        return {"users": 100, "connecting": 100 - logged_in,
                "counters": {"logged_in": logged_in, "connect_errors": 7}}

    return {"server": {"counters": {"connections": held}},
            "client01": client(client01), "client02": client(client02)}


def test_a_client_whose_logins_stop_moving_is_named_after_the_stall_time() -> None:
    state: dict[str, Any] = {}
    first = connect_progress(statuses(150, 100, 50), "server", 200, state, 1000.0, 900)
    assert first["stalled"] == [] and not first["done"]
    later = connect_progress(statuses(150, 100, 50), "server", 200, state,
                             1000.0 + STALL_AFTER_S, 900)
    assert later["stalled"] == ["client02"]
    assert "client02 (50/100 logged in, no progress for 30 s" in later["line"]
    assert "client01" not in later["line"].split("stalled:")[1]


def test_done_needs_the_server_target_and_every_user_logged_in() -> None:
    state: dict[str, Any] = {}
    assert not connect_progress(statuses(200, 100, 99), "server", 200, state, 0.0, 900)["done"]
    assert not connect_progress(statuses(199, 100, 100), "server", 200, state, 1.0, 900)["done"]
    assert connect_progress(statuses(200, 100, 100), "server", 200, state, 2.0, 900)["done"]


def test_it_times_out_only_when_not_done() -> None:
    state: dict[str, Any] = {}
    connect_progress(statuses(0, 0, 0), "server", 200, state, 0.0, 60)
    assert connect_progress(statuses(10, 5, 5), "server", 200, state, 61.0, 60)["timed_out"]
    assert not connect_progress(statuses(200, 100, 100), "server", 200, state, 62.0,
                                60)["timed_out"]


def test_the_rate_and_the_timeout_count_from_the_phase_start() -> None:
    state: dict[str, Any] = {"started": 990.0}  # as 'connect-progress --begin' leaves it
    first = connect_progress(statuses(150, 100, 50), "server", 200, state, 1000.0, 15)
    assert first["line"].startswith("phase1   10 s: server holds 150/200 connections (15/s)")
    assert connect_progress(statuses(150, 100, 50), "server", 200, state, 1005.0,
                            15)["timed_out"]
