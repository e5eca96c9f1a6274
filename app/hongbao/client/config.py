"""Everything a client node and its workers need to know, picklable for spawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# How the server answers (DESIGN §2): "hongbao" pushes SEND_NOTICEs to the chosen users;
# "original" answers a SHAKE with a SEND_NOTICE in place of its SHAKE_RESULT.
SERVER_KINDS = ("hongbao", "original")


@dataclass(frozen=True)
class ClientConfig:
    run_dir: Path
    run_id: str
    host_name: str
    server_host: str
    server_port: int
    server_kind: str = "hongbao"
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

    def __post_init__(self) -> None:
        if self.server_kind not in SERVER_KINDS:
            raise ValueError(f"server kind {self.server_kind!r} is not one of "
                             f"{', '.join(SERVER_KINDS)}")
