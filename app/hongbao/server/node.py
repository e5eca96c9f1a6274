"""The server node: splits the generators among its workers and adds the generator
endpoints (like the original's :8989 ``/yaohongbao`` and ``/fahongbao``)."""

from __future__ import annotations

import dataclasses
import socket
import time
from typing import Any

from hongbao import protocol as p
from hongbao.metrics.shipper import Shipper
from hongbao.metrics.sinks import Sink
from hongbao.node.control import Handler
from hongbao.node.control_params import Query, recipient_range
from hongbao.node.pool import WorkerHandle, WorkerPool
from hongbao.node.service import Node
from hongbao.server.commands import SkipIds
from hongbao.server.config import ServerConfig
from hongbao.server.generator_shares import Command, GeneratorShares, id_floor
from hongbao.server.worker import worker_main

ID_BASES = {"shake": p.SHAKE_PACKET_ID_BASE, "send": p.SEND_PACKET_ID_BASE}


def reserve_port(host: str) -> int:
    """Pick a free port for the workers to share (for ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerNode(Node):
    role = "server"

    def __init__(self, config: ServerConfig, sink: Sink | None = None,
                 control_token: str | None = None) -> None:
        if config.port == 0:
            config = dataclasses.replace(config, port=reserve_port(config.listen_host))
        self.config = config
        patterns = [f"server-{config.host_name}-*.lp", f"node-server-{config.host_name}.lp"]
        super().__init__(
            WorkerPool(worker_main, config, config.workers, "server"),
            (config.control_host, config.control_port),
            config.host_name, config.run_id, config.phase, config.run_dir,
            Shipper(config.run_dir, patterns, sink) if sink else None,
            control_token,
        )
        self.shares = GeneratorShares(config.workers)
        self.generators = self.shares.generators
        self.send_range = (0, 2**32 - 1)
        # the first packet id each worker may use (raised when a worker is restarted)
        self.id_floors = {kind: {i: base + i for i in range(config.workers)}
                          for kind, base in ID_BASES.items()}

    def describe(self) -> str:
        c = self.config
        return f"server {c.host_name} on {c.listen_host}:{c.port} with {c.workers} workers"

    async def status(self, query: Query | None = None) -> dict[str, Any]:
        gauges = self.pool.summed("gauges")
        return {
            **await super().status(query),
            "port": self.config.port,
            "degraded": gauges.get("degraded", 0) > 0,  # a worker could not write its files
            "degraded_workers": {w.index: w.status["degraded"] for w in self.pool.workers
                                 if w.status.get("degraded")},
            "queued": gauges.get("queued", 0),
            "open_sent_packets": gauges.get("open_sent", 0),
            "shake_generator": {**self.generators["shake"].as_dict(),
                                "released": gauges.get("shake_released", 0)},
            "send_generator": {**self.generators["send"].as_dict(),
                               "min_uid": self.send_range[0], "max_uid": self.send_range[1],
                               "released": gauges.get("send_released", 0)},
        }

    def _running(self) -> list[int]:
        return [w.index for w in self.pool.workers if not w.exited]

    def _send_all(self, commands: list[Command]) -> None:
        for index, command in commands:
            self.pool.send(index, command)

    async def start_shake(self, query: Query) -> dict[str, Any]:
        qps, total = float(query["qps"]), int(query["total"])
        self._send_all(self.shares.start("shake", qps, total, (), self._running()))
        return {"shake_generator": self.generators["shake"].as_dict()}

    async def start_send(self, query: Query) -> dict[str, Any]:
        qps, total = float(query["qps"]), int(query["total"])
        low, high = recipient_range(int(query["min_uid"]), int(query["max_uid"]))
        self.send_range = (low, high)
        self._send_all(self.shares.start("send", qps, total, (low, high), self._running()))
        return {"send_generator": {**self.generators["send"].as_dict(),
                                   "min_uid": low, "max_uid": high}}

    def on_worker_exit(self, worker: WorkerHandle) -> None:
        gauges = worker.status.get("gauges", {})
        released = {kind: gauges.get(f"{kind}_released", 0) for kind in ID_BASES}
        unreported_s = time.time() - worker.updated_at if worker.updated_at else 0.0
        next_ids = worker.status.get("next_ids", {})
        for kind, floors in self.id_floors.items():
            floors[worker.index] = max(floors[worker.index], id_floor(
                next_ids.get(kind, floors[worker.index]), self.config.workers,
                self.generators[kind].peak_qps, unreported_s))
        self._send_all(self.shares.worker_died(worker.index, released, self._running()))

    def on_worker_restarted(self, worker: WorkerHandle) -> None:
        super().on_worker_restarted(worker)
        floors = self.id_floors
        self.pool.send(worker.index, SkipIds(floors["shake"][worker.index],
                                             floors["send"][worker.index]))
        self._send_all(self.shares.worker_back(worker.index, self._running()))

    def routes(self) -> dict[str, Handler]:
        return {
            **super().routes(),
            "/shake": self.start_shake,
            "/yaohongbao": self.start_shake,
            "/send": self.start_send,
            "/fahongbao": self.start_send,
        }
