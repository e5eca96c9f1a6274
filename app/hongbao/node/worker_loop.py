"""Worker side of a node: asyncio's event loop (not uvloop, which would load TLS into every
worker: see ``no_tls.py``), the pipe to the node, the per-second tick aligned to
wall-clock seconds, and draining on SIGTERM or on the node's word."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Protocol

from setproctitle import setproctitle

from hongbao.logs import configure_logging
from hongbao.node.commands import Stop

log = logging.getLogger(__name__)

TICK_SLACK = 0.002  # fire just after the second turns
# Workers yield to the control plane (their node, its control API and shipper, ansible's
# polls, InfluxDB): on a saturated box those stay responsive, and the load is what waits.
WORKER_NICENESS = 5


def worker_title(role: str, index: int, run_id: str) -> str:
    """The process title of a worker: ``ps`` tells ``hongbao server w12 run=r1`` apart."""
    return f"hongbao {role} w{index} run={run_id}"


class WorkerBody(Protocol):
    async def start(self) -> dict[str, Any]: ...

    def on_command(self, command: object) -> None: ...

    def tick(self, second: int) -> dict[str, Any]: ...

    async def drain(self) -> None: ...


class WorkerRuntime:
    """Runs one WorkerBody until it is told to stop, then drains it and exits."""

    def __init__(self, body: WorkerBody, conn: Connection, title: str | None = None) -> None:
        self._body = body
        self._conn = conn
        self._title = title  # what ps shows for this worker, e.g. "hongbao server w12 run=r1"
        self._stop: asyncio.Event | None = None
        self._tick_handle: asyncio.TimerHandle | None = None

    def run(self) -> int:
        if self._title:
            setproctitle(self._title)
        os.nice(WORKER_NICENESS)
        configure_logging()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the node's to handle
        try:
            asyncio.run(self._main())
        except Exception:
            self._report("fatal", traceback.format_exc())
            raise
        return 0

    def _report(self, kind: str, payload: Any) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send((kind, payload))

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        info = await self._body.start()
        self._report("status", self._body.tick(math.floor(time.time()) - 1))  # zeros, at once
        self._report("ready", info)
        loop.add_reader(self._conn.fileno(), self._on_pipe)
        self._schedule_tick()
        await self._stop.wait()
        loop.remove_reader(self._conn.fileno())
        if self._tick_handle:
            self._tick_handle.cancel()
        await self._body.drain()
        self._report("status", self._body.tick(int(time.time())))

    def _on_pipe(self) -> None:
        assert self._stop is not None
        try:
            command = self._conn.recv()
        except (EOFError, OSError):
            log.warning("node went away; draining")
            self._stop.set()
            asyncio.get_running_loop().remove_reader(self._conn.fileno())
            return
        if isinstance(command, Stop):
            self._stop.set()
        else:
            self._body.on_command(command)

    def _schedule_tick(self) -> None:
        now = time.time()
        delay = math.floor(now) + 1 - now + TICK_SLACK
        self._tick_handle = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        second = math.floor(time.time()) - 1  # the second that just ended
        self._report("status", self._body.tick(second))
        self._schedule_tick()
