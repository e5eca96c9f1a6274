"""The client node: splits users and QPS among its workers, and adds ``/qps`` to the
control API (like the original's ``:9090/qps?qps=N``)."""

from __future__ import annotations

from typing import Any

from hongbao.client.commands import SetQps
from hongbao.client.config import ClientConfig
from hongbao.client.host_latency import HostLatency, latency_file_name
from hongbao.client.load_window import LoadWindow
from hongbao.client.source_pairs import SourcePairs
from hongbao.client.worker import worker_main
from hongbao.metrics.shipper import Shipper
from hongbao.metrics.sinks import Sink
from hongbao.node.control import Handler
from hongbao.node.control_params import Query
from hongbao.node.pool import WorkerHandle, WorkerPool
from hongbao.node.service import Node
from hongbao.pacing import split_count


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
                                     f"node-client-{config.host_name}.lp",
                                     f"{latency_file_name(config.host_name)}.lp"], sink)
            if sink else None,
            control_token,
        )
        self.latency = HostLatency(config.run_dir, config.host_name, config.run_id,
                                   config.workers, lambda: self.phase)
        self.window = LoadWindow()
        self.pool.on_status = self._worker_status

    def _worker_status(self, worker: WorkerHandle) -> None:
        status = worker.status
        if "second" in status:
            self.window.add_status(worker.index, status["second"], status.get("counters", {}),
                                   status.get("latency_histogram"))
        if "latency_histogram" in status:
            self.latency.add(worker.index, status["second"], status["latency_histogram"])

    def workers_stopped(self) -> None:
        self.latency.flush()

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
            "connect_window": gauges.get("connect_window", 0),  # connects allowed in flight
            "latency_us": self.latency.latest,  # this host's, all workers merged
            "window": self.window.as_status(  # since the last /qps, or within the bounds
                since=_bound(query, "window_since"), until=_bound(query, "window_until")),
        }

    async def set_qps(self, query: Query) -> dict[str, Any]:
        """``qps=0`` pauses sending; a worker that is down gets its share when it is back."""
        self.qps = int(query["qps"])
        self.window.restart(self.qps)
        for index, share in enumerate(split_count(self.qps, len(self.pool.workers))):
            self.pool.send(index, SetQps(share))
        return {"qps": self.qps}

    def on_worker_restarted(self, worker: WorkerHandle) -> None:
        super().on_worker_restarted(worker)
        share = split_count(self.qps, len(self.pool.workers))[worker.index]
        self.pool.send(worker.index, SetQps(share))

    def routes(self) -> dict[str, Handler]:
        return {**super().routes(), "/qps": self.set_qps}


def _bound(query: Query | None, name: str) -> int | None:
    """A load-window bound from ``/status``'s query; 0 or absent: none."""
    return int(query.get(name, 0)) or None if query else None
