#!/usr/bin/env python3
"""What the write-ahead ledger costs a server worker, in CPU per shake answered.

Drives a real ``ServerWorker`` (its shake path, SETs, ledger and write-ahead gate) in one
uvloop process, with connections that drop what they are sent, so only the worker's own
work is timed. Each loop pass answers ``--shakes-per-pass`` shakes (what one epoll
wake-up hands the worker under load); ``--win-ratio`` of them win a packet, so they pay
and need a ledger record. Four ledgers are compared:

- ``write-ahead``: the real code: the records of a pass are written with one
  ``os.write`` at the end of the pass, then the replies held behind them go out.
- ``write-ahead, unbatched``: the same guarantee with one ``os.write`` per record.
- ``before``: what the worker did before the write-ahead ledger: replies at once, records
  into a 64 KB buffered file (written when the buffer fills; lost on kill -9).
- ``no ledger``: records dropped; the floor the others are measured against.

Prints the median CPU (user + sys) per shake over ``--runs`` runs, and what the ledger
adds per shake and per payout.

    .venv/bin/python bench/ledger_cost.py [--runs 5] [--shakes 200000]
        [--shakes-per-pass 1,10,100] [--win-ratio 0.2] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import uvloop
from common import figure, log, print_table, save_json, whole_numbers

from hongbao.money import LedgerWriter
from hongbao.server.config import ServerConfig
from hongbao.server.worker import ServerWorker
from hongbao.server.write_ahead import Writable, WriteAheadLedger

FIRST_PACKET_ID = 0x100000


class DroppingConnection:
    """A logged-in user whose replies go nowhere."""

    __slots__ = ("user_id",)

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id

    def spend_budget(self, second: int, per_second: int) -> bool:
        return True  # no per-connection shedding: every shake is answered

    def write(self, data: bytes) -> None:
        pass


class Unbatched(WriteAheadLedger):
    """Write-ahead with one ``os.write`` per record and no held replies."""

    __slots__ = ()

    def recorded(self) -> None:
        self.ledger.flush()

    def pay(self, connection: Writable, reply: bytes) -> None:
        self.ledger.flush()
        connection.write(reply)

    def reply(self, connection: Writable, reply: bytes) -> None:
        connection.write(reply)


class RepliesFirst(Unbatched):
    """No write-ahead: replies at once; the ledger writes when it likes."""

    __slots__ = ()

    def recorded(self) -> None:
        pass

    def pay(self, connection: Writable, reply: bytes) -> None:
        connection.write(reply)


class BufferedLedger(LedgerWriter):
    """The ledger before write-ahead: records into a 64 KB buffered text file."""

    __slots__ = ("_file",)

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._file = path.open("a", encoding="ascii", buffering=1 << 16)

    def won(self, packet_id: int, user: int, amount: int) -> None:
        self._file.write(f"W\t{packet_id}\t{user}\t{amount}\n")

    def close(self, clean: bool = True) -> None:
        self._file.close()
        super().close(clean)


class DroppedLedger(LedgerWriter):
    __slots__ = ()

    def won(self, packet_id: int, user: int, amount: int) -> None:
        pass


def _write_ahead(worker: ServerWorker) -> None:
    pass  # the worker as it is


def _unbatched(worker: ServerWorker) -> None:
    worker.payouts = Unbatched(worker.ledger, worker._ledger_failed, worker._take_back)


def _before(worker: ServerWorker) -> None:
    worker.ledger = BufferedLedger(worker.ledger.path.with_suffix(".buffered"))
    worker.payouts = RepliesFirst(worker.ledger, worker._ledger_failed, worker._take_back)


def _no_ledger(worker: ServerWorker) -> None:
    worker.ledger = DroppedLedger(worker.ledger.path.with_suffix(".dropped"))
    worker.payouts = RepliesFirst(worker.ledger, worker._ledger_failed, worker._take_back)


MODES: dict[str, Callable[[ServerWorker], None]] = {
    "write-ahead": _write_ahead,
    "write-ahead, unbatched": _unbatched,
    "before": _before,
    "no ledger": _no_ledger,
}


async def _answer(worker: ServerWorker, shakes: int, per_pass: int, win_ratio: float) -> float:
    """CPU seconds to answer ``shakes`` shakes, ``per_pass`` per loop pass."""
    connections = [DroppingConnection(user) for user in range(per_pass)]
    on_shake = worker.on_shake
    feed = worker.sets.feed
    packet_id = FIRST_PACKET_ID
    owed = 0.0
    started = time.process_time()
    for _ in range(shakes // per_pass):
        owed += per_pass * win_ratio
        while owed >= 1:  # this pass's winners: packets queued just before they shake
            feed(packet_id, 100)
            packet_id += 1
            owed -= 1
        for connection in connections:
            on_shake(connection)  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the end of the pass: the write-ahead flush runs here
    await asyncio.sleep(0)
    return time.process_time() - started


def measure(mode: str, run_dir: Path, shakes: int, per_pass: int, win_ratio: float) -> float:
    """µs of CPU per shake answered."""
    config = ServerConfig(run_dir=run_dir, run_id="bench", host_name=f"bench-{per_pass}",
                          workers=1, n_sets=1, max_qps=10**12, seed=1)
    worker = ServerWorker(config, 0)
    MODES[mode](worker)
    worker.max_per_second = 10**12
    cpu = uvloop.run(_answer(worker, shakes, per_pass, win_ratio))
    won = worker.counters.won
    worker.ledger.close()
    expected = int(shakes // per_pass * per_pass * win_ratio + 1e-9)
    if worker.degraded or abs(won - expected) > 1:
        raise RuntimeError(f"{mode}: {won} won, {expected} expected, degraded {worker.degraded}")
    return cpu / shakes * 1e6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs to take medians over")
    parser.add_argument("--shakes", type=int, default=200_000, help="shakes per measurement")
    parser.add_argument("--shakes-per-pass", dest="per_pass", type=whole_numbers,
                        default=[1, 10, 100],
                        help="comma list: shakes answered per event-loop pass")
    parser.add_argument("--win-ratio", type=float, default=0.2,
                        help="share of shakes that win a packet (0.2: 1,000 QPS with 200 "
                             "packets/s; 0.007: 30k QPS with 200 packets/s)")
    parser.add_argument("--dir", type=Path, help="where ledger files go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="save the raw numbers here")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.shakes < 1:
        parser.error("--runs, --shakes and --shakes-per-pass must be at least 1")
    if not 0 < args.win_ratio <= 1:
        parser.error("--win-ratio must be in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="hongbao-ledger-bench-"))
    samples: dict[str, dict[int, list[float]]] = {m: {k: [] for k in args.per_pass} for m in MODES}
    started = time.monotonic()
    try:
        for run in range(args.runs):
            log(f"run {run + 1}/{args.runs}")
            for per_pass in args.per_pass:
                for mode in MODES:  # interleaved, so drift hits every mode alike
                    run_dir = base / f"run{run}-{per_pass}-{mode.replace(' ', '_')}"
                    samples[mode][per_pass].append(
                        measure(mode, run_dir, args.shakes, per_pass, args.win_ratio))
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    medians = {m: {k: statistics.median(v) for k, v in by_k.items()} for m, by_k in
               samples.items()}
    floor = medians["no ledger"]
    headers = ["ledger"]
    for per_pass in args.per_pass:
        headers += [f"µs/shake, {per_pass}/pass", "+ledger µs/payout"]
    rows = []
    for mode in MODES:
        row = [mode]
        for per_pass in args.per_pass:
            extra = (medians[mode][per_pass] - floor[per_pass]) / args.win_ratio
            row += [figure(samples[mode][per_pass], 2),
                    "—" if mode == "no ledger" else f"{extra:+.2f}"]
        rows.append(row)
    print(f"write-ahead ledger cost: {args.shakes:,} shakes per cell, "
             f"{args.win_ratio:g} of them paid, median of {args.runs} runs "
          f"({time.monotonic() - started:.0f} s)\n")
    print_table(headers, rows, [
        "µs/shake: worker CPU (user + sys) per shake answered, median (min-max) over runs",
        "+ledger µs/payout: (µs/shake - 'no ledger' µs/shake) / win ratio: what one paid "
        "shake's ledger record costs",
        "replies go to connections that drop them: socket writes are not in these figures",
    ])
    save_json(args.json, {"settings": vars(args), "samples_us_per_shake": samples})
    return 0


if __name__ == "__main__":
    sys.exit(main())
