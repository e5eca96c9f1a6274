"""Supervisor side of a node: worker processes, their pipes, and their latest status.

A node (a server or a client host) runs N worker processes. Each worker gets a duplex
pipe; it pushes a status dict every second and takes commands (tuples) from the node.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

WorkerMain = Callable[[Any, int, Connection], None]
StatusHook = Callable[["WorkerHandle"], None]


@dataclass
class WorkerHandle:
    index: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    status: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    updated_at: float = 0.0


class WorkerPool:
    """Starts workers with the spawn method (no forked event loops) and tracks them."""

    def __init__(self, main: WorkerMain, config: Any, count: int, name: str) -> None:
        if count < 1:
            raise ValueError(f"{name}: workers must be >= 1, got {count}")
        context = multiprocessing.get_context("spawn")
        self.workers: list[WorkerHandle] = []
        self.on_status: StatusHook | None = None  # called with each worker's fresh status
        self._child_ends: list[Connection] = []
        for index in range(count):
            parent, child = context.Pipe(duplex=True)
            process = context.Process(
                target=main, args=(config, index, child), name=f"{name}-w{index}", daemon=False
            )
            self.workers.append(WorkerHandle(index, process, parent))
            self._child_ends.append(child)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for worker in self.workers:
            worker.process.start()
        for child in self._child_ends:
            child.close()
        for worker in self.workers:
            loop.add_reader(worker.conn.fileno(), self._on_message, worker)

    def _on_message(self, worker: WorkerHandle) -> None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
            return
        if kind == "ready":
            worker.ready = True
        elif kind == "status":
            worker.status = payload
            worker.updated_at = time.time()
            if self.on_status is not None:
                self.on_status(worker)
        elif kind == "fatal":
            log.error("worker %d failed: %s", worker.index, payload)

    def send(self, index: int, message: tuple[Any, ...]) -> None:
        try:
            self.workers[index].conn.send(message)
        except (BrokenPipeError, OSError):
            log.warning("worker %d is gone; dropped %s", index, message[0])

    def broadcast(self, message: tuple[Any, ...]) -> None:
        for worker in self.workers:
            self.send(worker.index, message)

    @property
    def alive(self) -> int:
        return sum(1 for w in self.workers if w.process.is_alive())

    @property
    def all_ready(self) -> bool:
        return all(w.ready for w in self.workers)

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.all_ready:
            dead = [w.index for w in self.workers if not w.process.is_alive()]
            if dead:
                raise RuntimeError(f"workers {dead} exited during start-up; see the log above")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {timeout:.0f} s")
            await asyncio.sleep(0.05)

    def summed(self, key: str = "counters") -> dict[str, int]:
        """Sum one dict of numbers (``counters``, ``gauges``) over every worker."""
        total: dict[str, int] = {}
        for worker in self.workers:
            for name, value in worker.status.get(key, {}).items():
                total[name] = total.get(name, 0) + value
        return total

    async def stop(self, timeout: float = 15.0) -> list[int | None]:
        """Ask every worker to drain, wait, then kill stragglers. Returns exit codes."""
        self.broadcast(("stop",))
        deadline = time.monotonic() + timeout
        while self.alive and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for worker in self.workers:
            if worker.process.is_alive():
                log.error("worker %d did not drain in %.0f s; killing it", worker.index, timeout)
                worker.process.kill()
            worker.process.join(1)
        return [w.process.exitcode for w in self.workers]
