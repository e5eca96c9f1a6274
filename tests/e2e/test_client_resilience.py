"""The client under a stalled server: shakes pile up in flight, the rate drops to 0,
and every connection survives with every response counted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.nodes import (
    NodeProcess,
    start_client,
    start_server,
    wait_for,
    wait_settled,
    worker_pids,
)

USERS = 500


def in_flight(client: NodeProcess) -> int:
    counters = client.counters()
    return counters["requests"] - counters["responses"]


def test_rate_zero_with_shakes_in_flight_drops_no_connection(tmp_path: Path) -> None:
    server = start_server(tmp_path, 1)
    client = start_client(tmp_path, server, USERS, 1)
    try:
        wait_for(lambda: client.counters()["logins"] == USERS, 30, "every user logged in")
        client.get("/qps", qps=USERS)  # every user shakes every second
        wait_for(lambda: client.counters()["responses"] >= USERS, 30, "a second of answers")
        (worker,) = worker_pids(server)
        os.kill(worker, signal.SIGSTOP)  # the server stalls: shakes pile up in flight
        try:
            wait_for(lambda: in_flight(client) >= 2 * USERS, 30,
                     "two seconds of shakes piled up in flight")
            client.get("/qps", qps=0)
        finally:
            os.kill(worker, signal.SIGCONT)
        wait_for(lambda: client.counters()["responses"] == client.counters()["requests"], 15,
                 "every response")
        wait_settled(server, client)
        counters = client.counters()
        assert counters["disconnects"] == 0
        assert counters["timeouts"] == 0
        assert counters["connections"] == USERS
        assert server.counters()["requests"] == counters["responses"] >= 2 * USERS
    finally:
        assert client.stop() == 0
        assert server.stop() == 0
