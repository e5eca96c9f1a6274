"""SETs of users (``user_id % n_sets``), each with its own queue of shake packets.

The generator feeds the SETs round-robin, so every SET gets its fair share.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator


class ShakeSets:
    __slots__ = ("_next", "queues")

    def __init__(self, n_sets: int) -> None:
        if n_sets < 1:
            raise ValueError(f"n_sets must be >= 1, got {n_sets}")
        self.queues: list[deque[tuple[int, int]]] = [deque() for _ in range(n_sets)]
        self._next = 0

    def feed(self, packet_id: int, amount: int) -> None:
        """Queue a packet in the next SET, round-robin."""
        self.queues[self._next].append((packet_id, amount))
        self._next = (self._next + 1) % len(self.queues)

    def take(self, user_id: int) -> tuple[int, int] | None:
        """The oldest packet queued in the user's SET, if any."""
        queue = self.queues[user_id % len(self.queues)]
        return queue.popleft() if queue else None

    def queued(self) -> Iterator[tuple[int, int]]:
        for queue in self.queues:
            yield from queue

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues)
