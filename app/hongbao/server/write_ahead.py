"""Replies that pay money wait for their ledger records (DESIGN §10).

Records made during one event-loop pass are written with one ``os.write`` at the end of
the pass (``call_soon``); the replies held behind them go out right after, in the order
they were made. A connection with a reply held has its later replies of that pass held
too, so it never sees them reordered; other connections' replies go out at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from hongbao.money import LedgerWriter


class Writable(Protocol):
    def write(self, data: bytes) -> None: ...


TakeBack = Callable[[bytes], bytes | None]
"""Called for each held paying reply when the ledger write failed: takes the payout back
and returns the reply to send instead (None: send nothing)."""


class WriteAheadLedger:
    __slots__ = ("_held", "_holding", "_on_failure", "_scheduled", "_take_back", "ledger")

    def __init__(self, ledger: LedgerWriter, on_failure: Callable[[OSError], None],
                 take_back: TakeBack) -> None:
        self.ledger = ledger
        self._on_failure = on_failure
        self._take_back = take_back
        self._held: list[tuple[Writable, bytes, bool]] = []  # (connection, reply, pays)
        self._holding: set[Writable] = set()  # the connections with a reply held
        self._scheduled = False

    def recorded(self) -> None:
        """A record was added to the ledger: write it at the end of this pass."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def pay(self, connection: Writable, reply: bytes) -> None:
        """Send ``reply`` once the records made so far are in the ledger file."""
        self.recorded()
        self._held.append((connection, reply, True))
        self._holding.add(connection)

    def reply(self, connection: Writable, reply: bytes) -> None:
        """Send a reply that pays nothing, after any reply held for the same connection."""
        if self._holding and connection in self._holding:
            self._held.append((connection, reply, False))
        else:
            connection.write(reply)

    def flush(self) -> None:
        """Write the waiting records, then the held replies (or, if the write failed,
        what ``take_back`` says instead of each paying one)."""
        self._scheduled = False
        held, self._held = self._held, []
        self._holding.clear()
        try:
            self.ledger.flush()
        except OSError as error:
            self._on_failure(error)
            for connection, reply, pays in held:
                instead = self._take_back(reply) if pays else reply
                if instead is not None:
                    connection.write(instead)
            return
        for connection, reply, _pays in held:
            connection.write(reply)
