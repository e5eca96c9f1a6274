"""Real server and client node processes on loopback, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hongbao.nodeprocess import NodeProcess, free_port, start_node

RUN_ID = "test-run"


def start_server(run_dir: Path, workers: int = 2, *extra: str,
                 env: dict[str, str] | None = None) -> NodeProcess:
    port = free_port()
    return start_node(run_dir, RUN_ID, "server", [
        "server", "--listen", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--seed", "7", *extra], env, port)


def start_client(run_dir: Path, server: NodeProcess, users: int, workers: int = 2,
                 name: str = "client01", first_user: int = 0, *extra: str,
                 env: dict[str, str] | None = None) -> NodeProcess:
    return start_node(run_dir, RUN_ID, name, [
        "client", "--server", f"127.0.0.1:{server.port}", "--users", str(users),
        "--first-user", str(first_user), "--workers", str(workers), "--connect-rate", "4000",
        *extra], env)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def mark_phase(run_dir: Path, name: str, event: str, env: dict[str, str] | None = None) -> None:
    """Record a phase boundary the way the playbooks do: the real CLI."""
    subprocess.run([sys.executable, "-m", "hongbao.cli", "phase", "mark", "--name", name,
                    "--event", event, "--run-id", RUN_ID, "--run-dir", str(run_dir)],
                   check=True, capture_output=True, env={**os.environ, **(env or {})})
