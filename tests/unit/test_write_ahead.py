"""Replies that pay wait for their ledger records: one write per loop pass, then the replies."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from hongbao.money import LedgerWriter
from hongbao.server.write_ahead import WriteAheadLedger


class Connection:
    """Records each reply with the ledger file's content at the moment it is written."""

    def __init__(self, ledger_path: Path, log: list[tuple[str, bytes, bytes]], name: str) -> None:
        self.ledger_path = ledger_path
        self.log = log
        self.name = name

    def write(self, data: bytes) -> None:
        self.log.append((self.name, data, self.ledger_path.read_bytes()))


class Writes:
    def __init__(self, ledger_path: Path) -> None:
        self.log: list[tuple[str, bytes, bytes]] = []
        self.a = Connection(ledger_path, self.log, "a")
        self.b = Connection(ledger_path, self.log, "b")


def take_back(reply: bytes) -> bytes | None:
    """What a worker sends instead of a payout it could not record."""
    return {b"won": b"none", b"claimed": b"zero"}.get(reply)


def one_pass(body) -> None:
    """Run ``body`` as one callback of a fresh loop, then let the loop pass once more."""
    async def main() -> None:
        body()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())


def test_a_payout_goes_out_after_its_record_is_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv"
    ledger = LedgerWriter(path)
    gate = WriteAheadLedger(ledger, pytest.fail, take_back)
    writes = Writes(path)

    def body() -> None:
        ledger.won(1, 5, 100)
        gate.pay(writes.a, b"won")
        ledger.claimed(2, 6, 30)
        gate.pay(writes.b, b"claimed")
        assert writes.log == []

    one_pass(body)
    both = b"W\t1\t5\t100\nC\t2\t6\t30\n"
    assert writes.log == [("a", b"won", both), ("b", b"claimed", both)]


def test_one_write_per_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = LedgerWriter(tmp_path / "w.tsv")
    gate = WriteAheadLedger(ledger, pytest.fail, take_back)
    writes = Writes(tmp_path / "w.tsv")
    sizes: list[int] = []
    real_write = os.write

    def counted_write(fd: int, data: bytes) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr("hongbao.money.os.write", counted_write)

    def body() -> None:
        for user in range(10):
            ledger.won(user, user, 1)
            gate.pay(writes.a, b"won")
            ledger.generated(100 + user, 7)
            gate.recorded()

    one_pass(body)
    assert sizes == [len((tmp_path / "w.tsv").read_bytes())]
    assert (tmp_path / "w.tsv").read_text().count("\n") == 20
    assert len(writes.log) == 10


def test_a_plain_reply_waits_only_behind_its_own_connections_held_ones(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv"
    ledger = LedgerWriter(path)
    gate = WriteAheadLedger(ledger, pytest.fail, take_back)
    writes = Writes(path)

    def body() -> None:
        gate.reply(writes.a, b"none-1")  # nothing waits: written at once
        ledger.won(1, 5, 100)
        gate.pay(writes.a, b"won")
        gate.reply(writes.b, b"none-b")  # another connection: nothing to wait for
        gate.reply(writes.a, b"none-2")  # must not overtake a's held reply
        assert [data for _name, data, _ in writes.log] == [b"none-1", b"none-b"]

    one_pass(body)
    assert [data for _name, data, _ in writes.log] == [b"none-1", b"none-b", b"won", b"none-2"]


def test_a_failed_write_sends_what_take_back_says(tmp_path: Path) -> None:
    ledger = LedgerWriter(Path("/dev/full"))  # every write fails with ENOSPC
    failures: list[OSError] = []
    gate = WriteAheadLedger(ledger, failures.append, take_back)
    writes = Writes(Path("/dev/null"))

    def body() -> None:
        ledger.won(1, 5, 100)
        gate.pay(writes.a, b"won")
        ledger.sent(2, 90, [5, 6, 7], [30, 30, 30])
        gate.pay(writes.b, b"notice")
        gate.reply(writes.b, b"overload")

    one_pass(body)
    ledger.close()
    assert [data for _name, data, _ in writes.log] == [b"none", b"overload"]
    assert len(failures) == 1 and "No space left" in str(failures[0])
