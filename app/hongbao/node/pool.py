"""Supervisor side of a node: worker processes, their pipes, their latest status, and
restarting the ones that die.

A node (a server or a client host) runs N worker processes. Each worker gets a duplex
pipe; it pushes a status dict every second and takes commands (frozen dataclasses) from
the node.
A worker counts as live while its process runs and its last status is at most
``STALE_AFTER_S`` old; only live workers are summed into the node's status.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from hongbao.node.commands import Stop
from hongbao.node.restart_policy import RestartPolicy

log = logging.getLogger(__name__)

WorkerMain = Callable[[Any, int, Connection], None]
STALE_AFTER_S = 5.0
# A worker's drain closes its connections and its ledger. At 1M connections on 2 cores (18,500
# connections per server worker, 54 of them closing at once) 8 of 54 took longer than 15 s
# and were killed, so their ledgers had no end record.
DRAIN_TIMEOUT_S = 60.0


def exit_status(code: int | None) -> str:
    if code is None:
        return "an unknown status"
    if code < 0:
        try:
            return f"status {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"status {code}"
    return f"status {code}"

StatusHook = Callable[["WorkerHandle"], None]


@dataclass
class WorkerHandle:
    index: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    status: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    updated_at: float = 0.0
    restarts: int = 0
    exited: bool = False

    def tick_age(self, now: float) -> float | None:
        return round(now - self.updated_at, 1) if self.updated_at else None

    def live(self, now: float) -> bool:
        return (not self.exited and self.process.is_alive()
                and now - self.updated_at <= STALE_AFTER_S)


class WorkerPool:
    """Starts workers, tracks them, and restarts those that die, with backoff, until the
    restart policy gives up.

    Workers are forked by multiprocessing's fork server, which has imported the worker's
    module and runs no event loop (so no loop is forked). Each worker then shares the
    interpreter's and the libraries' pages with the fork server instead of loading its own
    copy, as the spawn method did: a server worker's base fell from 26.6 to 20.6 MB RSS and
    from 16.9 to 7.6 MB PSS (bench/memory_per_connection.py, 4 workers, bench/README.md).
    The fork server imports ``hongbao.node.no_tls`` first, so that no worker loads TLS.
    """

    def __init__(self, main: WorkerMain, config: Any, count: int, name: str,
                 policy: RestartPolicy | None = None) -> None:
        if count < 1:
            raise ValueError(f"{name}: workers must be >= 1, got {count}")
        self._main = main
        self._config = config
        self._count = count
        self._name = name
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["hongbao.node.no_tls", main.__module__])
        self._policy = policy or RestartPolicy()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restart_timers: dict[int, asyncio.TimerHandle] = {}
        self._stopping = False
        self.workers: list[WorkerHandle] = []
        self.restarts = 0
        self.failed = asyncio.Event()
        self.on_exit: Callable[[WorkerHandle], None] = lambda _worker: None
        self.on_restarted: Callable[[WorkerHandle], None] = lambda _worker: None
        self.on_status: StatusHook | None = None  # called with each worker's fresh status

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for index in range(self._count):
            process, conn = self._spawn(index)
            self.workers.append(WorkerHandle(index, process, conn))
            self._watch(self.workers[index])

    def _spawn(self, index: int) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=self._main, args=(self._config, index, child),
                                        name=f"{self._name}-w{index}", daemon=False)
        process.start()
        child.close()
        return process, parent

    def _watch(self, worker: WorkerHandle) -> None:
        assert self._loop is not None
        self._loop.add_reader(worker.conn.fileno(), self._on_message, worker)
        self._loop.add_reader(worker.process.sentinel, self._on_process_end, worker)

    def _on_message(self, worker: WorkerHandle) -> None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
            return
        if kind == "ready":
            worker.ready = True
            if worker.restarts:
                log.info("%s worker %d is back (pid %d)", self._name, worker.index,
                         worker.process.pid)
                self.on_restarted(worker)
        elif kind == "status":
            worker.status = payload
            worker.updated_at = time.time()
            if self.on_status is not None:
                self.on_status(worker)
        elif kind == "fatal":
            log.error("%s worker %d failed: %s", self._name, worker.index, payload)

    def _on_process_end(self, worker: WorkerHandle) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.process.sentinel)
        loop.remove_reader(worker.conn.fileno())
        worker.process.join(1)
        worker.exited = True
        if self._stopping:
            return
        status = exit_status(worker.process.exitcode)
        delay = self._policy.delay(worker.index, time.time())
        if delay is None:
            log.critical("%s worker %d (pid %d) exited with %s; workers keep dying (%d "
                         "restarts in %.0f s): giving up", self._name, worker.index,
                         worker.process.pid, status, self._policy.max_restarts_in_window,
                         self._policy.window_s)
            self.failed.set()
            return
        log.error("%s worker %d (pid %d) exited with %s; restarting it in %.1f s",
                  self._name, worker.index, worker.process.pid, status, delay)
        self.on_exit(worker)
        self._restart_timers[worker.index] = loop.call_later(delay, self._restart, worker)

    def _restart(self, worker: WorkerHandle) -> None:
        del self._restart_timers[worker.index]
        if self._stopping:
            return
        worker.conn.close()
        worker.process.close()
        worker.process, worker.conn = self._spawn(worker.index)
        worker.status, worker.ready, worker.updated_at = {}, False, 0.0
        worker.exited = False
        worker.restarts += 1
        self.restarts += 1
        self._watch(worker)

    def send(self, index: int, command: object) -> None:
        worker = self.workers[index]
        if worker.exited:
            log.debug("%s worker %d is down; dropped %s", self._name, index, command)
            return
        try:
            worker.conn.send(command)
        except (BrokenPipeError, OSError):
            log.warning("%s worker %d is gone; dropped %s", self._name, index, command)

    def broadcast(self, command: object) -> None:
        for worker in self.workers:
            self.send(worker.index, command)

    def live_workers(self) -> list[WorkerHandle]:
        now = time.time()
        return [w for w in self.workers if w.live(now)]

    @property
    def alive(self) -> int:
        """Workers whose process runs (live or not)."""
        return sum(1 for w in self.workers if not w.exited and w.process.is_alive())

    @property
    def all_ready(self) -> bool:
        return bool(self.workers) and all(w.ready for w in self.workers)

    def describe_workers(self) -> list[dict[str, Any]]:
        now = time.time()
        return [{"index": w.index, "pid": w.process.pid if not w.exited else None,
                 "live": w.live(now), "last_tick_age_s": w.tick_age(now),
                 "restarts": w.restarts} for w in self.workers]

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.all_ready:
            dead = [w.index for w in self.workers if w.exited or not w.process.is_alive()]
            if dead:
                raise RuntimeError(f"workers {dead} exited during start-up; see the log above")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {timeout:.0f} s")
            await asyncio.sleep(0.05)

    def summed(self, key: str = "counters") -> dict[str, int]:
        """Sum one dict of numbers (``counters``, ``gauges``) over the live workers."""
        total: dict[str, int] = {}
        for worker in self.live_workers():
            for name, value in worker.status.get(key, {}).items():
                total[name] = total.get(name, 0) + value
        return total

    async def stop(self, timeout: float = DRAIN_TIMEOUT_S) -> list[int | None]:
        """Ask every worker to drain, wait, then kill stragglers. Returns exit codes."""
        self._stopping = True
        for timer in self._restart_timers.values():
            timer.cancel()
        self.broadcast(Stop())
        running = [w for w in self.workers if not w.exited]
        deadline = time.monotonic() + timeout
        while any(w.process.is_alive() for w in running) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for worker in running:
            if worker.process.is_alive():
                log.error("%s worker %d did not drain in %.0f s; killing it", self._name,
                          worker.index, timeout)
                worker.process.kill()
            worker.process.join(1)
        return [w.process.exitcode for w in self.workers]
