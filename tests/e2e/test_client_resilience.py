"""The client under a stalled server: shakes pile up in flight, the rate drops to 0,
and every connection survives with every response counted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from tests.e2e.nodes import start_client, start_server, wait_for

USERS = 500


def test_rate_zero_with_shakes_in_flight_drops_no_connection(tmp_path: Path) -> None:
    server = start_server(tmp_path, 1)
    client = start_client(tmp_path, server, USERS, 1)
    try:
        wait_for(lambda: client.counters()["logins"] == USERS, 30, "every user logged in")
        client.get("/qps", qps=USERS)  # every user shakes every second
        time.sleep(1.5)
        (worker,) = [child for child in psutil.Process(server.process.pid).children()
                     if "spawn_main" in " ".join(child.cmdline())]
        os.kill(worker.pid, signal.SIGSTOP)  # the server stalls: shakes pile up in flight
        try:
            time.sleep(2.5)
            client.get("/qps", qps=0)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        wait_for(lambda: client.counters()["responses"] == client.counters()["requests"], 15,
                 "every response")
        time.sleep(1.2)
        counters = client.counters()
        assert counters["disconnects"] == 0
        assert counters["timeouts"] == 0
        assert counters["connections"] == USERS
        assert server.counters()["requests"] == counters["responses"] >= 2 * USERS
    finally:
        assert client.stop() == 0
        assert server.stop() == 0
