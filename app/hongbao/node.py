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

from aiohttp import web

from hongbao import __version__
from hongbao.controlapi import BadParameter, Handler, build_app, serve
from hongbao.metrics.shipper import Shipper
from hongbao.workerpool import WorkerPool

log = logging.getLogger(__name__)

WORKER_START_TIMEOUT = 30.0


class Node:
    role = "node"

    def __init__(self, pool: WorkerPool, control: tuple[str, int], host_name: str,
                 run_id: str, phase: str, shipper: Shipper | None = None) -> None:
        self.pool = pool
        self.shipper = shipper
        self.control = control
        self.host_name = host_name
        self.run_id = run_id
        self.phase = phase
        self.started_at = time.time()

    def routes(self) -> dict[str, Handler]:
        return {"/status": self.status, "/phase": self.set_phase}

    def describe(self) -> str:
        return f"{self.role} {self.host_name}"

    async def status(self, _request: web.Request | None = None) -> dict[str, Any]:
        return {
            "role": self.role,
            "version": __version__,
            "host": self.host_name,
            "run_id": self.run_id,
            "pid": os.getpid(),
            "phase": self.phase,
            "uptime_s": round(time.time() - self.started_at, 1),
            "workers": len(self.pool.workers),
            "workers_alive": self.pool.alive,
            "ready": self.pool.all_ready,
            "counters": self.pool.summed(),
            "shipping": self.shipper.status() if self.shipper else None,
        }

    async def set_phase(self, request: web.Request) -> dict[str, Any]:
        name = request.query.get("name", "")
        if not name:
            raise BadParameter("missing query parameter 'name'")
        self.phase = name
        self.pool.broadcast(("phase", name))
        return {"phase": name}

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
        runner = await serve(build_app(self.routes()), *self.control)
        if pid_file:
            pid_file.write_text(f"{os.getpid()}\n")
        log.info("%s; control API on http://%s:%d/status", self.describe(), *self.control)
        ship_stop = asyncio.Event()
        shipping = asyncio.create_task(self.shipper.run(ship_stop)) if self.shipper else None
        await stop.wait()
        log.info("%s draining", self.role)
        codes = await self.pool.stop()
        self.workers_stopped()
        if shipping is not None:  # after the workers, so their last points are shipped too
            ship_stop.set()
            if not await shipping:
                log.warning("some points are not in InfluxDB yet; they stay spooled in %s/metrics"
                            ": replay them with 'hongbao ship'", self.shipper.run_dir)
        await runner.cleanup()
        if pid_file:
            pid_file.unlink(missing_ok=True)
        if any(code != 0 for code in codes):
            log.error("%s workers exited with %s", self.role, codes)
            return 1
        log.info("%s stopped cleanly", self.role)
        return 0
