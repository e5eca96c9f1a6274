"""What every node (server or client host) does around its workers: start them, serve
the control API, write a pid file, and drain everything on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from hongbao import __version__
from hongbao.metrics.emitter import PerSecondEmitter
from hongbao.metrics.pointfile import PointFile
from hongbao.metrics.shipper import Shipper
from hongbao.node.commands import SetPhase
from hongbao.node.control import ControlServer, Handler
from hongbao.node.control_params import Query
from hongbao.node.memory import node_processes, rss_kb
from hongbao.node.pool import WorkerHandle, WorkerPool

log = logging.getLogger(__name__)

WORKER_START_TIMEOUT = 30.0


class Node:
    role = "node"

    def __init__(self, pool: WorkerPool, control: tuple[str, int], host_name: str,
                 run_id: str, phase: str, run_dir: Path, shipper: Shipper | None = None,
                 control_token: str | None = None) -> None:
        self.pool = pool
        self.pool.on_exit = self.on_worker_exit
        self.pool.on_restarted = self.on_worker_restarted
        self.shipper = shipper
        self.control = control
        self.control_token = control_token
        self.run_dir = run_dir
        self.host_name = host_name
        self.run_id = run_id
        self.phase = phase
        self.started_at = time.time()
        self._requests = -1  # the live workers' summed requests, as last seen
        self._requests_changed_at = self.started_at

    def routes(self) -> dict[str, Handler]:
        return {"/status": self.status, "/phase": self.set_phase}

    def describe(self) -> str:
        return f"{self.role} {self.host_name}"

    def on_worker_exit(self, worker: WorkerHandle) -> None:
        """A worker died and will be restarted: nodes rebalance its share here."""

    def on_worker_restarted(self, worker: WorkerHandle) -> None:
        """A restarted worker is ready: it takes the current phase (nodes add its share)."""
        self.pool.send(worker.index, SetPhase(self.phase))

    async def status(self, _query: Query | None = None) -> dict[str, Any]:
        return {
            "role": self.role,
            "version": __version__,
            "host": self.host_name,
            "run_id": self.run_id,
            "pid": os.getpid(),
            "phase": self.phase,
            "uptime_s": round(time.time() - self.started_at, 1),
            "workers": len(self.pool.workers),
            "workers_alive": len(self.pool.live_workers()),
            "worker_restarts": self.pool.restarts,
            "per_worker": self.pool.describe_workers(),
            "ready": self.pool.all_ready,
            "counters": self.pool.summed(),
            # seconds since the summed requests last moved: once the load is off, a server
            # still reading its backlog out of its sockets is not quiet yet
            "requests_quiet_s": round(time.time() - self._requests_changed_at, 1),
            "shipping": self.shipper.status() if self.shipper else None,
        }

    async def set_phase(self, query: Query) -> dict[str, Any]:
        name = str(query["name"])
        self.phase = name
        self.pool.broadcast(SetPhase(name))
        return {"phase": name}

    def _emit_node_point(self, emitter: PerSecondEmitter) -> None:
        """One ``node`` point a second: workers, live workers, late ones (running but not
        ticking: starved), restarts so far, and the RSS of the node and every process under
        it (workers, the fork server, the resource tracker) together."""
        emitter.tags["phase"] = self.phase
        workers = [worker.process.pid for worker in self.pool.workers
                   if worker.process.pid is not None and not worker.exited]
        live = len(self.pool.live_workers())
        emitter.emit(int(time.time()) - 1, {"workers": len(self.pool.workers),
                                            "workers_alive": live,
                                            "workers_late": self.pool.alive - live,
                                            "worker_restarts": self.pool.restarts,
                                            "rss_kb": rss_kb(node_processes(workers))})

    async def _every_second(self, emitter: PerSecondEmitter) -> None:
        while True:
            await asyncio.sleep(1 - time.time() % 1 + 0.01)
            self._note_requests()
            self._emit_node_point(emitter)

    def _note_requests(self) -> None:
        requests = self.pool.summed().get("requests", 0)
        if requests != self._requests:
            self._requests, self._requests_changed_at = requests, time.time()

    def workers_stopped(self) -> None:
        """Called once every worker has exited and sent its last status."""

    async def run(self, pid_file: Path | None = None) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.pool.start(loop)
        try:
            await self.pool.wait_ready(WORKER_START_TIMEOUT)
        except RuntimeError as error:
            log.error("%s failed to start: %s", self.role, error)
            await self.pool.stop(timeout=2)
            return 1
        control = ControlServer(self.role, self.routes(), self.control_token, loop,
                                *self.control)
        control.start()
        if pid_file:
            pid_file.write_text(f"{os.getpid()}\n")
        log.info("%s; control API on http://%s:%d/status%s", self.describe(), *self.control,
                 " (token required)" if self.control_token else "")
        fields = ("workers", "workers_alive", "workers_late", "worker_restarts", "rss_kb")
        emitter = PerSecondEmitter(
            PointFile(self.run_dir, f"node-{self.role}-{self.host_name}"), "node",
            {"host": self.host_name, "role": self.role, "run_id": self.run_id,
             "phase": self.phase}, frozenset(fields))
        ticking = asyncio.create_task(self._every_second(emitter))
        ship_stop = asyncio.Event()
        shipping = asyncio.create_task(self.shipper.run(ship_stop)) if self.shipper else None
        stopped, failed = asyncio.create_task(stop.wait()), asyncio.create_task(
            self.pool.failed.wait())
        await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
        for waiter in (stopped, failed):
            waiter.cancel()
        log.info("%s draining", self.role)
        codes = await self.pool.stop()
        ticking.cancel()
        self._emit_node_point(emitter)
        self.workers_stopped()
        if shipping is not None:  # after the workers, so their last points are shipped too
            ship_stop.set()
            if not await shipping:
                log.warning("some points are not in InfluxDB yet; they stay spooled in %s/metrics"
                            ": replay them with 'hongbao ship'", self.shipper.run_dir)
        await control.close()
        if pid_file:
            pid_file.unlink(missing_ok=True)
        if self.pool.failed.is_set():
            log.error("%s gave up: its workers kept dying; exit codes %s", self.role, codes)
            return 1
        if any(code != 0 for code in codes):
            log.error("%s workers exited with %s", self.role, codes)
            return 1
        restarts = f" after {self.pool.restarts} worker restarts" if self.pool.restarts else ""
        log.info("%s stopped cleanly%s", self.role, restarts)
        return 0
