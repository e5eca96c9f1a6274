"""Claims sent and not yet answered, so that a claim with no reply is counted, not lost.

A CLAIM_RESULT names its packet, so a reply is matched by (user, packet id); when one
user claims one packet more than once, replies answer those claims oldest first.
"""

from __future__ import annotations

from collections import deque

ClaimKey = tuple[int, int]  # (user id, packet id)


class ClaimBook:
    __slots__ = ("_by_age", "_next_number", "_waiting", "waiting_count")

    def __init__(self) -> None:
        self._waiting: dict[ClaimKey, deque[int]] = {}  # key -> claim numbers, oldest first
        self._by_age: deque[tuple[float, int, ClaimKey]] = deque()  # (sent at, number, key)
        self._next_number = 0
        self.waiting_count = 0

    def sent(self, user: int, packet_id: int, at: float) -> None:
        key = (user, packet_id)
        number = self._next_number
        self._next_number += 1
        self._waiting.setdefault(key, deque()).append(number)
        self._by_age.append((at, number, key))
        self.waiting_count += 1

    def answered(self, user: int, packet_id: int) -> bool:
        """Takes the oldest claim waiting for this reply; False when none waits (the
        reply came after its claim expired, or answers no claim at all)."""
        key = (user, packet_id)
        waiting = self._waiting.get(key)
        if not waiting:
            return False
        self._take_oldest(key, waiting)
        return True

    def expire(self, sent_before: float) -> int:
        """Drops the claims sent before ``sent_before`` that are still waiting; returns
        how many. Looks only at claims that old, oldest first."""
        expired = 0
        by_age = self._by_age
        while by_age and by_age[0][0] < sent_before:
            _, number, key = by_age.popleft()
            waiting = self._waiting.get(key)
            if waiting and waiting[0] == number:  # otherwise it was answered
                self._take_oldest(key, waiting)
                expired += 1
        return expired

    def _take_oldest(self, key: ClaimKey, waiting: deque[int]) -> None:
        waiting.popleft()
        if not waiting:
            del self._waiting[key]
        self.waiting_count -= 1
