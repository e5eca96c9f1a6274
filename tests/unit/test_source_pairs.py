from __future__ import annotations

import pytest

from hongbao.client.source_pairs import SourcePairs, parse_source_ips


def test_ranges_and_lists_expand() -> None:
    assert parse_source_ips("127.0.0.2-127.0.0.4,10.0.0.1") == (
        "127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.1")
    assert parse_source_ips("") == ()


def test_each_user_gets_a_distinct_pair_ports_first() -> None:
    pairs = SourcePairs(("127.0.0.2", "127.0.0.3"), 10000, 10002)
    assert [pairs.pair(k) for k in range(4)] == [
        ("127.0.0.2", 10000), ("127.0.0.2", 10001), ("127.0.0.2", 10002), ("127.0.0.3", 10000)]
    assert pairs.capacity == 6


def test_too_many_users_for_the_pairs_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="add --source-ips or widen --source-ports"):
        SourcePairs(("127.0.0.2",), 10000, 10009).check_room(11)


def test_backwards_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="runs backwards"):
        parse_source_ips("127.0.0.9-127.0.0.2")


def test_a_taken_pair_detours_to_a_spare_beyond_every_users_own() -> None:
    pairs = SourcePairs(("127.0.0.2", "127.0.0.3"), 10000, 10009)  # 20 pairs, 6 users
    own = {pairs.pair(k, 6) for k in range(6)}
    spare = pairs.pair(2, 6, detour=1)
    assert spare == ("127.0.0.2", 10008) and spare not in own
    assert pairs.pair(2, 6, detour=2) == ("127.0.0.3", 10004)
    assert pairs.pair(2, 6, detour=3) == ("127.0.0.2", 10006)  # round the spares
    assert all(pairs.pair(k, 6, detour=d) not in own for k in range(6) for d in range(1, 9))
    full = SourcePairs(("127.0.0.2",), 10000, 10005)  # 6 pairs, 6 users: no spare at all
    assert full.pair(2, 6, detour=1) == full.pair(2, 6)
