"""Everything a server node and its workers need to know, picklable for spawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AmountRange:
    low: int
    high: int


@dataclass(frozen=True)
class ServerConfig:
    run_dir: Path
    run_id: str
    host_name: str
    listen_host: str = "0.0.0.0"
    port: int = 7000
    workers: int = 2
    n_sets: int = 256  # as the original (user_id % 256)
    max_qps: int = 100_000  # whole node; each worker sheds above its share
    max_qps_per_connection: int = 20  # shakes a second one connection may make before 17s
    login_timeout_s: float = 10.0  # connections that have not logged in by then are closed
    backlog: int = 8192
    control_host: str = "127.0.0.1"
    control_port: int = 8989
    shake_amount: AmountRange = AmountRange(1, 2000)
    send_amount: AmountRange = AmountRange(300, 20000)
    seed: int | None = None
    phase: str = "idle"
