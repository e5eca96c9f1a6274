"""Splitting amounts and reconciling ledgers: every cent accounted for."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hongbao.money import LedgerWriter, reconcile, split_amount


@given(st.integers(1, 10), st.integers(0, 10**7), st.integers(0, 2**32))
def test_claims_sum_exactly_to_packet_amount(parts: int, extra: int, seed: int) -> None:
    total = parts + extra
    shares = split_amount(total, parts, random.Random(seed))
    assert len(shares) == parts
    assert sum(shares) == total
    assert min(shares) >= 1


def test_split_refuses_amounts_too_small_for_a_cent_each() -> None:
    with pytest.raises(ValueError, match="cannot split 2 cents into 3 shares"):
        split_amount(2, 3, random.Random(1))


def test_split_is_random_not_even() -> None:
    rng = random.Random(3)
    assert len({tuple(split_amount(1000, 3, rng)) for _ in range(20)}) > 10


def write_ledger(path: Path, clean: bool = True) -> None:
    ledger = LedgerWriter(path)
    ledger.generated(0x100000, 100)
    ledger.generated(0x100002, 250)
    ledger.won(0x100000, 5, 100)
    ledger.sent(0x200000, 900, [1, 2, 3], [300, 500, 100])
    ledger.claimed(0x200000, 1, 300)
    ledger.claimed(0x200000, 2, 500)
    ledger.claimed(0x200000, 3, 100)
    ledger.sent(0x200002, 60, [4, 5, 6], [10, 20, 30])
    ledger.claimed(0x200002, 4, 10)
    if clean:
        ledger.still_queued([(0x100002, 250)])
    ledger.close(clean=clean)


def test_clean_ledger_balances(tmp_path: Path) -> None:
    write_ledger(tmp_path / "a.tsv")
    balance = reconcile([tmp_path / "a.tsv"])
    assert balance.ok, balance.problems
    assert (balance.generated, balance.generated_amount) == (2, 350)
    assert (balance.won, balance.won_amount, balance.queued_amount) == (1, 100, 250)
    assert (balance.sent, balance.sent_amount, balance.claimed_amount) == (2, 960, 910)
    assert balance.unclaimed_amount == 50
    assert balance.fully_claimed == 1


def test_crash_cut_last_line_still_reconciles(tmp_path: Path) -> None:
    path = tmp_path / "a.tsv"
    write_ledger(path, clean=False)
    with path.open("a") as handle:
        handle.write("W\t0x1000")  # the crash cut this record short
    balance = reconcile([path])
    assert balance.ok, balance.problems
    assert balance.queued == 1


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("W\t1048576\t9\t100\n", "won twice"),
        ("W\t1048577\t9\t100\n", "never generated"),
        ("C\t2097152\t1\t5\n", "claimed packet 0x200000 twice"),
        ("C\t2097154\t9\t5\n", "not sent to it"),
        ("C\t2097154\t5\t60\n", "over-claimed"),
        ("S\t2097156\t10\t1,2,3\t1,1,1\n", "do not split 10"),
    ],
)
def test_reconcile_names_what_does_not_add_up(tmp_path: Path, record: str, problem: str) -> None:
    path = tmp_path / "a.tsv"
    write_ledger(path, clean=False)
    with path.open("a") as handle:
        handle.write(record)
    balance = reconcile([path])
    assert not balance.ok
    assert any(problem in text for text in balance.problems), balance.problems


def test_queue_snapshot_must_match_unwon_packets(tmp_path: Path) -> None:
    path = tmp_path / "a.tsv"
    ledger = LedgerWriter(path)
    ledger.generated(0x100000, 100)
    ledger.still_queued([])  # claims nothing is queued, but 0x100000 was never won
    ledger.close()
    assert "queue at shutdown differs" in reconcile([path]).problems[0]
