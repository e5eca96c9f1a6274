"""How a server node splits its two generators among its workers, and re-splits them
when a worker dies and comes back.

While a worker is down, the live workers share the whole rate; the dead worker's unfinished
part of the total (its share minus what its last status reported released) waits for its
next incarnation, which also gets its even share of the rate back. A restarted worker must
not reuse the packet ids its predecessor issued: ``id_floor`` says where it may start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hongbao.pacing import split_count
from hongbao.server.commands import Retune, SetSendRate, SetShakeRate

Command = tuple[int, SetShakeRate | SetSendRate | Retune]  # (worker index, its command)
GENERATOR_STEPS_PER_SECOND = 50  # the worker's generator runs in 50 steps a second


@dataclass
class Generator:
    kind: str
    qps: float = 0.0
    total: int = 0
    extra: tuple[int, ...] = ()  # send: the recipients' (min_uid, max_uid)
    peak_qps: float = 0.0
    assigned: dict[int, int] = field(default_factory=dict)  # worker -> its share of total
    owed: dict[int, int] = field(default_factory=dict)  # dead worker -> what it still owes

    def as_dict(self) -> dict[str, Any]:
        return {"qps": self.qps, "total": self.total}

    def setting(self, rate: float, total: int) -> SetShakeRate | SetSendRate:
        """One worker's command: ``total`` packets at ``rate``."""
        if self.kind == "shake":
            return SetShakeRate(rate, total)
        return SetSendRate(rate, total, *self.extra)


class GeneratorShares:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.generators = {kind: Generator(kind) for kind in ("shake", "send")}

    def start(self, kind: str, qps: float, total: int, extra: tuple[int, ...],
              running: list[int]) -> list[Command]:
        """A new setting from the control API: split it among every worker; those not
        running get theirs when they are back."""
        generator = self.generators[kind]
        generator.qps, generator.total, generator.extra = qps, total, extra
        generator.peak_qps = max(generator.peak_qps, qps)
        generator.assigned = dict(enumerate(split_count(total, self.workers)))
        generator.owed = {i: generator.assigned[i] for i in range(self.workers)
                          if i not in running}
        rate = qps / len(running) if running else 0.0
        return [(i, generator.setting(rate, generator.assigned[i])) for i in running]

    def worker_died(self, index: int, released: dict[str, int],
                    running: list[int]) -> list[Command]:
        """``running`` no longer holds ``index``: the others share the whole rate."""
        commands: list[Command] = []
        for kind, generator in self.generators.items():
            left = max(0, generator.assigned.get(index, 0) - released.get(kind, 0))
            generator.owed[index] = left
            commands += self._retune(generator, running, skip=None)
        return commands

    def worker_back(self, index: int, running: list[int]) -> list[Command]:
        """``running`` holds ``index`` again: it takes what it owes at an even rate."""
        commands: list[Command] = []
        for generator in self.generators.values():
            owed = generator.owed.pop(index, 0)
            generator.assigned[index] = owed
            if owed or generator.qps:
                rate = generator.qps / len(running)
                commands.append((index, generator.setting(rate, owed)))
            commands += self._retune(generator, running, skip=index)
        return commands

    @staticmethod
    def _retune(generator: Generator, running: list[int], skip: int | None) -> list[Command]:
        if not generator.qps or not running:
            return []
        rate = generator.qps / len(running)
        return [(i, Retune(generator.kind, rate)) for i in running if i != skip]


def id_floor(next_id: int, stride: int, peak_rate: float, unreported_s: float) -> int:
    """The first id a restarted worker may use: its predecessor reported ``next_id`` and
    then ran ``unreported_s`` more seconds at no more than ``peak_rate`` packets a second
    (plus one packet per generator step)."""
    most = math.ceil((peak_rate + GENERATOR_STEPS_PER_SECOND) * max(0.0, unreported_s)) + 1
    return next_id + stride * most
