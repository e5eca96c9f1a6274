"""When a node restarts a worker that died: capped exponential backoff per worker, and a
node-wide limit after which the node gives up (its workers keep dying)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    first_delay_s: float = 1.0  # >= 1 s: the new worker's first point is for a later second
    max_delay_s: float = 10.0
    window_s: float = 60.0
    max_restarts_in_window: int = 5
    _restarts: deque[tuple[float, int]] = field(default_factory=deque)  # (when, worker)

    def delay(self, worker: int, now: float) -> float | None:
        """Seconds to wait before restarting ``worker``, which died at ``now``; None when
        the node has restarted too many workers lately and must give up."""
        while self._restarts and self._restarts[0][0] <= now - self.window_s:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts_in_window:
            return None
        recent = sum(1 for _, index in self._restarts if index == worker)
        self._restarts.append((now, worker))
        return min(self.max_delay_s, self.first_delay_s * 2**recent)

    def recent(self, now: float) -> int:
        return sum(1 for when, _ in self._restarts if when > now - self.window_s)
