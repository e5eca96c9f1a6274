"""The server node: splits the generators among its workers and adds the generator
endpoints (like the original's :8989 ``/yaohongbao`` and ``/fahongbao``)."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from aiohttp import web

from hongbao.controlapi import BadParameter, Handler, number
from hongbao.metrics.shipper import Shipper
from hongbao.metrics.sinks import Sink
from hongbao.node import Node
from hongbao.pacing import split_count, split_rate
from hongbao.server.config import ServerConfig
from hongbao.server.worker import worker_main
from hongbao.workerpool import WorkerPool

UNLIMITED = 2**31 - 1


def reserve_port(host: str) -> int:
    """Pick a free port for the workers to share (for ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerNode(Node):
    role = "server"

    def __init__(self, config: ServerConfig, sink: Sink | None = None) -> None:
        if config.port == 0:
            config = dataclasses.replace(config, port=reserve_port(config.listen_host))
        self.config = config
        super().__init__(
            WorkerPool(worker_main, config, config.workers, "server"),
            (config.control_host, config.control_port),
            config.host_name, config.run_id, config.phase,
            Shipper(config.run_dir, [f"server-{config.host_name}-*.lp"], sink) if sink else None,
        )
        self.generators: dict[str, dict[str, Any]] = {
            "shake": {"qps": 0, "total": 0},
            "send": {"qps": 0, "total": 0},
        }

    def describe(self) -> str:
        c = self.config
        return f"server {c.host_name} on {c.listen_host}:{c.port} with {c.workers} workers"

    async def status(self, request: web.Request | None = None) -> dict[str, Any]:
        gauges = self.pool.summed("gauges")
        return {
            **await super().status(request),
            "port": self.config.port,
            "degraded": gauges.get("degraded", 0) > 0,  # a worker could not write its files
            "degraded_workers": {w.index: w.status["degraded"] for w in self.pool.workers
                                 if w.status.get("degraded")},
            "queued": gauges.get("queued", 0),
            "open_sent_packets": gauges.get("open_sent", 0),
            "shake_generator": {**self.generators["shake"],
                                "released": gauges.get("shake_released", 0)},
            "send_generator": {**self.generators["send"],
                               "released": gauges.get("send_released", 0)},
        }

    async def start_shake(self, request: web.Request) -> dict[str, Any]:
        qps = number(request, "qps", integer=False)
        total = int(number(request, "total", default=UNLIMITED))
        self._split("shake", qps, total)
        self.generators["shake"] = {"qps": qps, "total": total}
        return {"shake_generator": self.generators["shake"]}

    async def start_send(self, request: web.Request) -> dict[str, Any]:
        qps = number(request, "qps", integer=False)
        total = int(number(request, "total", default=UNLIMITED))
        low = int(number(request, "min_uid", default=0))
        high = int(number(request, "max_uid", default=2**32 - 1))
        if high < low:
            raise BadParameter(f"max_uid ({high}) must be >= min_uid ({low})")
        self._split("send", qps, total, low, high)
        self.generators["send"] = {"qps": qps, "total": total, "min_uid": low, "max_uid": high}
        return {"send_generator": self.generators["send"]}

    def _split(self, kind: str, qps: float, total: int, *extra: int) -> None:
        workers = len(self.pool.workers)
        shares = zip(split_rate(qps, workers), split_count(total, workers), strict=True)
        for index, (rate, count) in enumerate(shares):
            self.pool.send(index, (kind, rate, count, *extra))

    def routes(self) -> dict[str, Handler]:
        return {
            **super().routes(),
            "/shake": self.start_shake,
            "/yaohongbao": self.start_shake,
            "/send": self.start_send,
            "/fahongbao": self.start_send,
        }
