"""Everything a client node and its workers need to know, picklable for spawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClientConfig:
    run_dir: Path
    run_id: str
    host_name: str
    server_host: str
    server_port: int
    first_user: int = 0
    users: int = 1000
    workers: int = 1
    source_ips: tuple[str, ...] = ()  # empty: let the kernel pick (fine below ~28k)
    port_low: int = 10000
    port_high: int = 60999
    connect_rate: float = 2000.0  # whole node, connections per second
    max_connecting: int = 2000  # whole node, connects in flight at once
    qps: int = 0  # whole node, shake requests per second
    timeout_s: float = 5.0
    login_wait_s: float = 30.0  # connected, no LOGIN_OK yet: then abort and retry
    control_host: str = "127.0.0.1"
    control_port: int = 9090
    phase: str = "idle"
