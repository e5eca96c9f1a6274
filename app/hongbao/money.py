"""Money: splitting a sent packet among its recipients, the append-only ledger, and
reconciling a ledger into balances.

All amounts are integer cents. A ledger is a text file of tab-separated records:

    G  packet_id amount               a shake packet was generated (queued in a SET)
    W  packet_id user amount          a shake packet was won
    Q  packet_id amount               still queued at a clean shutdown
    S  packet_id amount users shares  a packet was sent to 3 users (comma lists)
    C  packet_id user amount          a recipient claimed its share
    E  clean                          clean shutdown: the Q records above are complete

A worker writes a won or claimed record before the reply that pays it, so a file holds
every payment its clients saw. A file without its end record belongs to a worker that
crashed (or could not write): the packets it still had queued are "lost in crash".
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def split_amount(total: int, parts: int, rng: random.Random) -> list[int]:
    """Split ``total`` cents into ``parts`` random shares, each at least 1 cent.

    Each share but the last is drawn from ``[1, 2 * mean]`` of what is left (the
    'double mean' rule), capped so every later share can still get a cent; the last
    claimant takes the remainder, so the shares sum exactly to ``total``.
    """
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    if total < parts:
        raise ValueError(f"cannot split {total} cents into {parts} shares of at least 1 cent")
    shares: list[int] = []
    left = total
    for remaining in range(parts, 1, -1):
        high = min(left - (remaining - 1), max(1, 2 * left // remaining))
        share = rng.randint(1, high)
        shares.append(share)
        left -= share
    shares.append(left)
    return shares


class LedgerWriter:
    """Appends packet events to one worker's ledger file, written ahead of the replies.

    Records wait in memory until :meth:`flush` writes them all with one ``os.write`` (to
    the OS page cache, which outlives the process). A write lands whole or not at all: a
    short or failed write is cut back to the last whole batch, and the error is raised.
    After an error the writer writes nothing more, so the file stays consistent.
    """

    __slots__ = ("_fd", "_pending", "_size", "failed", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._pending: list[str] = []
        self.failed: OSError | None = None

    def generated(self, packet_id: int, amount: int) -> None:
        self._pending.append(f"G\t{packet_id}\t{amount}\n")

    def won(self, packet_id: int, user: int, amount: int) -> None:
        self._pending.append(f"W\t{packet_id}\t{user}\t{amount}\n")

    def sent(self, packet_id: int, amount: int, users: Sequence[int],
             shares: Sequence[int]) -> None:
        self._pending.append(
            f"S\t{packet_id}\t{amount}\t{','.join(map(str, users))}\t"
            f"{','.join(map(str, shares))}\n"
        )

    def claimed(self, packet_id: int, user: int, amount: int) -> None:
        self._pending.append(f"C\t{packet_id}\t{user}\t{amount}\n")

    def still_queued(self, packets: Iterable[tuple[int, int]]) -> None:
        self._pending.extend(f"Q\t{pid}\t{amount}\n" for pid, amount in packets)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Write every pending record with one ``os.write``; raise OSError if they could
        not all be written (none of them is then in the file)."""
        if self.failed is not None:
            self._pending.clear()
            raise self.failed
        if not self._pending:
            return
        data = "".join(self._pending).encode("ascii")
        self._pending.clear()
        written = 0
        try:
            while written < len(data):  # a regular file may take less than asked
                written += os.write(self._fd, data[written:] if written else data)
        except OSError as error:
            self.failed = error
            if written:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
            raise
        self._size += written

    def close(self, clean: bool = True) -> None:
        """Write what is pending and, for a clean close, the end record; a writer that
        failed writes nothing (its file then has no end record)."""
        try:
            if self.failed is None:
                if clean:
                    self._pending.append("E\tclean\n")
                self.flush()
        finally:
            self._pending.clear()
            os.close(self._fd)


@dataclass
class Balance:
    """Totals reconciled from one or more ledgers, and what did not add up."""

    generated: int = 0
    generated_amount: int = 0
    won: int = 0
    won_amount: int = 0
    queued: int = 0
    queued_amount: int = 0
    lost_in_crash: int = 0
    lost_in_crash_amount: int = 0
    crashed: list[str] = field(default_factory=list)
    sent: int = 0
    sent_amount: int = 0
    claims: int = 0
    claimed_amount: int = 0
    fully_claimed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def unclaimed_amount(self) -> int:
        return self.sent_amount - self.claimed_amount

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "generated": self.generated,
            "generated_amount": self.generated_amount,
            "won": self.won,
            "won_amount": self.won_amount,
            "queued": self.queued,
            "queued_amount": self.queued_amount,
            "lost_in_crash": self.lost_in_crash,
            "lost_in_crash_amount": self.lost_in_crash_amount,
            "crashed": self.crashed,
            "sent": self.sent,
            "sent_amount": self.sent_amount,
            "claims": self.claims,
            "claimed_amount": self.claimed_amount,
            "unclaimed_amount": self.unclaimed_amount,
            "fully_claimed": self.fully_claimed,
            "ok": self.ok,
            "problems": self.problems,
        }


@dataclass
class _SentPacket:
    amount: int
    users: list[int]
    claimed_by: dict[int, int] = field(default_factory=dict)


@dataclass
class _LedgerState:
    generated: dict[int, int] = field(default_factory=dict)
    won: dict[int, int] = field(default_factory=dict)
    queue_snapshot: dict[int, int] | None = None
    ended: bool = False
    sent: dict[int, _SentPacket] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _apply(state: _LedgerState, where: str, fields: list[str]) -> None:
    kind, values = fields[0], fields[1:]
    if kind == "G":
        pid, amount = int(values[0]), int(values[1])
        if pid in state.generated:
            state.problems.append(f"{where}: packet {pid:#x} generated twice")
        state.generated[pid] = amount
    elif kind == "W":
        pid, _user, amount = (int(v) for v in values)
        if pid not in state.generated:
            state.problems.append(f"{where}: packet {pid:#x} won but never generated")
        elif state.generated[pid] != amount:
            state.problems.append(
                f"{where}: packet {pid:#x} won for {amount} but generated for "
                f"{state.generated[pid]}"
            )
        if pid in state.won:
            state.problems.append(f"{where}: packet {pid:#x} won twice")
        state.won[pid] = amount
    elif kind == "Q":
        if state.queue_snapshot is None:
            state.queue_snapshot = {}
        state.queue_snapshot[int(values[0])] = int(values[1])
    elif kind == "S":
        pid, amount = int(values[0]), int(values[1])
        users = [int(u) for u in values[2].split(",")]
        shares = [int(s) for s in values[3].split(",")]
        if sum(shares) != amount or min(shares) < 1:
            state.problems.append(f"{where}: packet {pid:#x} shares {shares} do not split {amount}")
        state.sent[pid] = _SentPacket(amount, users)
    elif kind == "C":
        pid, user, amount = (int(v) for v in values)
        packet = state.sent.get(pid)
        if packet is None:
            state.problems.append(f"{where}: claim on unknown packet {pid:#x}")
            return
        if user not in packet.users:
            state.problems.append(f"{where}: user {user} claimed packet {pid:#x} not sent to it")
        if user in packet.claimed_by:
            state.problems.append(f"{where}: user {user} claimed packet {pid:#x} twice")
        packet.claimed_by[user] = amount
    elif kind == "E":
        state.ended = True
        if state.queue_snapshot is None:  # a clean close with no Q records: nothing queued
            state.queue_snapshot = {}
    else:
        raise ValueError(f"unknown record {kind!r}")


def _read_one(path: Path, state: _LedgerState) -> None:
    text = path.read_text(encoding="ascii")
    lines = text.split("\n")
    complete = lines[:-1]  # after a crash the last line may be cut short: ignore it
    for number, line in enumerate(complete, start=1):
        if line:
            try:
                _apply(state, f"{path.name}:{number}", line.split("\t"))
            except (ValueError, IndexError) as error:
                state.problems.append(f"{path.name}:{number}: unreadable record {line!r}: {error}")


def reconcile(paths: Iterable[Path]) -> Balance:
    """Check every ledger and total them.

    generated = won + queued, for counts and amounts; a clean shutdown's queue snapshot
    must list exactly the packets that were never won. For each sent packet the claims
    are at most its amount, and equal to it once every recipient has claimed.
    """
    balance = Balance()
    for path in sorted(paths):
        state = _LedgerState()
        _read_one(path, state)
        _total(state, path.name, balance)
    return balance


def _total(state: _LedgerState, name: str, balance: Balance) -> None:
    unwon = {pid: amount for pid, amount in state.generated.items() if pid not in state.won}
    if not state.ended:
        balance.crashed.append(name)
        balance.lost_in_crash += len(unwon)
        balance.lost_in_crash_amount += sum(unwon.values())
        state.problems.append(
            f"{name}: no end record: its worker crashed or could not write; "
            f"{len(unwon)} queued packets ({sum(unwon.values())} cents) lost in crash")
    else:
        if state.queue_snapshot != unwon:
            missing = set(unwon) ^ set(state.queue_snapshot or {})
            state.problems.append(
                f"{name}: queue at shutdown differs from generated minus won on "
                f"{len(missing)} packets"
            )
        balance.queued += len(unwon)
        balance.queued_amount += sum(unwon.values())
    balance.generated += len(state.generated)
    balance.generated_amount += sum(state.generated.values())
    balance.won += len(state.won)
    balance.won_amount += sum(state.won.values())
    for pid, packet in state.sent.items():
        claimed = sum(packet.claimed_by.values())
        balance.sent += 1
        balance.sent_amount += packet.amount
        balance.claims += len(packet.claimed_by)
        balance.claimed_amount += claimed
        if claimed > packet.amount:
            state.problems.append(
                f"{name}: packet {pid:#x} over-claimed {claimed} > {packet.amount}"
            )
        if len(packet.claimed_by) == len(packet.users):
            balance.fully_claimed += 1
            if claimed != packet.amount:
                state.problems.append(
                    f"{name}: packet {pid:#x} fully claimed for {claimed}, not {packet.amount}"
                )
    balance.problems.extend(state.problems)


def format_balance(balance: Balance) -> str:
    """Human-readable balance lines, each marked OK or MISMATCH."""
    b = balance
    shake_ok = b.generated_amount == b.won_amount + b.queued_amount + b.lost_in_crash_amount
    lines = [
        f"shake packets: generated {b.generated} ({b.generated_amount} cents) = "
        f"won {b.won} ({b.won_amount}) + queued {b.queued} ({b.queued_amount}) + "
        f"lost in crash {b.lost_in_crash} ({b.lost_in_crash_amount})"
        f"  {'OK' if shake_ok else 'MISMATCH'}",
        f"sent packets:  {b.sent} ({b.sent_amount} cents) = claimed "
        f"{b.claimed_amount} in {b.claims} claims + unclaimed {b.unclaimed_amount}; "
        f"{b.fully_claimed} fully claimed",
    ]
    if b.crashed:
        lines.append(f"crashed: {len(b.crashed)} worker ledgers without an end record: "
                     f"{', '.join(b.crashed)}")
    lines.append("ledger: OK" if b.ok else "ledger: MISMATCH")
    lines.extend(f"  - {problem}" for problem in b.problems[:50])
    if len(b.problems) > 50:
        lines.append(f"  ... and {len(b.problems) - 50} more")
    return "\n".join(lines)


def ledger_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "ledger").glob("*.tsv"))
