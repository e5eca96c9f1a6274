"""The client node: splits users and QPS among its workers, and adds ``/qps`` to the
control API (like the original's ``:9090/qps?qps=N``)."""

from __future__ import annotations

from typing import Any

from hongbao.client.config import ClientConfig
from hongbao.client.source_pairs import SourcePairs
from hongbao.client.worker import worker_main
from hongbao.controlapi import Handler
from hongbao.controlparams import Query
from hongbao.metrics.shipper import Shipper
from hongbao.metrics.sinks import Sink
from hongbao.node import Node
from hongbao.pacing import split_count
from hongbao.workerpool import WorkerHandle, WorkerPool


class ClientNode(Node):
    role = "client"

    def __init__(self, config: ClientConfig, sink: Sink | None = None,
                 control_token: str | None = None) -> None:
        SourcePairs(config.source_ips, config.port_low, config.port_high).check_room(
            config.users
        )
        self.config = config
        self.qps = config.qps
        super().__init__(
            WorkerPool(worker_main, config, config.workers, "client"),
            (config.control_host, config.control_port),
            config.host_name, config.run_id, config.phase, config.run_dir,
            Shipper(config.run_dir, [f"client-{config.host_name}-*.lp",
                                     f"node-client-{config.host_name}.lp"], sink)
            if sink else None,
            control_token,
        )

    def describe(self) -> str:
        c = self.config
        return (f"client {c.host_name}: users {c.first_user}..{c.first_user + c.users - 1} "
                f"-> {c.server_host}:{c.server_port} with {c.workers} workers")

    async def status(self, query: Query | None = None) -> dict[str, Any]:
        gauges = self.pool.summed("gauges")
        return {
            **await super().status(query),
            "qps": self.qps,
            "users": self.config.users,
            "first_user": self.config.first_user,
            "connecting": gauges.get("connecting", 0),
            "latency_us": self._worst_latency(),
        }

    def _worst_latency(self) -> dict[str, int]:
        """Each percentile's worst value over the workers, for the last second."""
        worst: dict[str, int] = {}
        for worker in self.pool.live_workers():
            for name, value in worker.status.get("latency_us", {}).items():
                worst[name] = max(worst.get(name, 0), value)
        return worst

    async def set_qps(self, query: Query) -> dict[str, Any]:
        """``qps=0`` pauses sending; a worker that is down gets its share when it is back."""
        self.qps = int(query["qps"])
        for index, share in enumerate(split_count(self.qps, len(self.pool.workers))):
            self.pool.send(index, ("qps", share))
        return {"qps": self.qps}

    def on_worker_restarted(self, worker: WorkerHandle) -> None:
        super().on_worker_restarted(worker)
        share = split_count(self.qps, len(self.pool.workers))[worker.index]
        self.pool.send(worker.index, ("qps", share))

    def routes(self) -> dict[str, Handler]:
        return {**super().routes(), "/qps": self.set_qps}
