"""Splitting amounts and reconciling ledgers: every cent accounted for."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hongbao.money import LedgerWriter, format_balance, reconcile, split_amount


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


def test_crash_cut_last_line_is_ignored_and_the_crash_named(tmp_path: Path) -> None:
    path = tmp_path / "srv-w0-123.tsv"
    write_ledger(path, clean=False)
    with path.open("a") as handle:
        handle.write("W\t0x1000")  # the crash cut this record short
    balance = reconcile([path])
    assert balance.crashed == ["srv-w0-123.tsv"]
    assert (balance.won, balance.won_amount) == (1, 100)
    assert (balance.queued, balance.lost_in_crash, balance.lost_in_crash_amount) == (0, 1, 250)
    assert not balance.ok
    assert balance.problems == ["srv-w0-123.tsv: no end record: its worker crashed or could not "
                                "write; 1 queued packets (250 cents) lost in crash"]


def test_lost_in_crash_is_listed_apart_from_queued(tmp_path: Path) -> None:
    write_ledger(tmp_path / "clean.tsv")
    write_ledger(tmp_path / "crashed.tsv", clean=False)
    balance = reconcile([tmp_path / "clean.tsv", tmp_path / "crashed.tsv"])
    assert balance.crashed == ["crashed.tsv"]
    assert (balance.queued, balance.queued_amount) == (1, 250)
    assert (balance.lost_in_crash, balance.lost_in_crash_amount) == (1, 250)
    text = format_balance(balance)
    assert "= won 2 (200) + queued 1 (250) + lost in crash 1 (250)  OK" in text
    assert "crashed: 1 worker ledgers without an end record: crashed.tsv" in text
    assert "ledger: MISMATCH" in text


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


def test_a_failed_write_is_cut_back_to_whole_records(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.tsv"
    ledger = LedgerWriter(path)
    ledger.generated(0x100000, 100)
    ledger.flush()
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def disk_fills_up(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:5]))  # a short write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("hongbao.money.os.write", disk_fills_up)
    ledger.generated(0x100002, 250)
    ledger.won(0x100000, 5, 100)
    with pytest.raises(OSError, match="No space left"):
        ledger.flush()
    assert path.read_bytes() == before
    ledger.won(0x100002, 6, 250)
    with pytest.raises(OSError, match="No space left"):
        ledger.flush()  # a failed writer writes nothing more
    ledger.close()
    assert len(calls) == 2
    assert path.read_bytes() == before


def test_records_wait_in_memory_until_flush(tmp_path: Path) -> None:
    path = tmp_path / "a.tsv"
    ledger = LedgerWriter(path)
    ledger.generated(0x100000, 100)
    assert ledger.pending == 1
    assert path.read_bytes() == b""
    ledger.flush()
    assert ledger.pending == 0
    assert path.read_bytes() == b"G\t1048576\t100\n"
    ledger.close()
    assert path.read_bytes().endswith(b"E\tclean\n")
