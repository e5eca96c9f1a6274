"""The users logged in on one worker, with O(1) add/remove and random draws."""

from __future__ import annotations

import random
from typing import Any


class OnlineUsers:
    """Maps user id -> connection, and keeps a dense list of ids for sampling."""

    __slots__ = ("_ids", "_index", "connections")

    def __init__(self) -> None:
        self.connections: dict[int, Any] = {}
        self._ids: list[int] = []
        self._index: dict[int, int] = {}

    def add(self, user_id: int, connection: Any) -> Any | None:
        """Register a login; returns the connection it replaced, if the user was on."""
        previous = self.connections.get(user_id)
        self.connections[user_id] = connection
        if previous is None:
            self._index[user_id] = len(self._ids)
            self._ids.append(user_id)
        return previous

    def remove(self, user_id: int, connection: Any) -> None:
        if self.connections.get(user_id) is not connection:
            return  # already replaced by a newer login
        del self.connections[user_id]
        position = self._index.pop(user_id)
        last = self._ids.pop()
        if last != user_id:
            self._ids[position] = last
            self._index[last] = position

    def __len__(self) -> int:
        return len(self._ids)

    def count_in(self, low: int, high: int) -> int:
        """How many online users have ``low <= id <= high`` (a scan: for messages only)."""
        return sum(1 for user in self._ids if low <= user <= high)

    def draw(self, count: int, low: int, high: int, rng: random.Random) -> list[int] | None:
        """``count`` distinct online users with ``low <= id <= high``, or None if too few
        could be found. Picks from whichever is smaller: the id range or the online list."""
        if not self._ids:
            return None
        chosen: list[int] = []
        span = high - low + 1
        for _ in range(64 * count):
            if span <= len(self._ids):
                user = rng.randint(low, high)
                eligible = user in self.connections
            else:
                user = self._ids[rng.randrange(len(self._ids))]
                eligible = low <= user <= high
            if eligible and user not in chosen:
                chosen.append(user)
                if len(chosen) == count:
                    return chosen
        return None
