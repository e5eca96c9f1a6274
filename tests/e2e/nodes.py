"""Real server and client node processes on loopback, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from hongbao.local.node_process import NodeProcess, free_port, start_node

RUN_ID = "test-run"
STEADY_S = 1.2  # longer than a tick: counters that did not move for this long are final


def start_server(run_dir: Path, workers: int = 2, *extra: str,
                 env: dict[str, str] | None = None, log_dir: Path | None = None) -> NodeProcess:
    port = free_port()
    return start_node(run_dir, RUN_ID, "server", [
        "server", "--listen", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--seed", "7", *extra], env, port, log_dir=log_dir)


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


def worker_pids(node: NodeProcess) -> list[int]:
    """The node's worker processes, told apart by their titles ("hongbao server w0
    run=test-run"), not multiprocessing's resource tracker."""
    pids = []
    for child in psutil.Process(node.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if re.fullmatch(rf"hongbao \w+ w\d+ run={RUN_ID}", " ".join(child.cmdline()).strip()):
                pids.append(child.pid)
    return sorted(pids)


def kill_hard(pids: list[int]) -> None:
    """SIGKILL each process, then wait until every one is gone (or reaped)."""
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            processes.append(psutil.Process(pid))
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


def wait_until_steady(read: Callable[[], object], timeout: float, what: str,
                      quiet: float = 2.5) -> object:
    """Poll ``read`` until its value has not changed for ``quiet`` seconds; return it."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still changing after {timeout} s")
        time.sleep(0.25)
        latest = read()
        if latest != value:
            value, since = latest, time.monotonic()
    return value


def wait_settled(server: NodeProcess, client: NodeProcess, timeout: float = 30) -> None:
    """Wait until every shake is answered, the server has counted as many as the client
    sent, and the client's count has not moved for over a tick (counters are per-second
    ticks: a send after the rate went to 0 still lands in the current second)."""
    seen = {"requests": -1, "since": time.monotonic()}

    def settled() -> bool:
        sent = client.counters()
        if sent["requests"] != seen["requests"]:
            seen.update(requests=sent["requests"], since=time.monotonic())
        return (sent["requests"] == sent["responses"] == server.counters()["requests"]
                and time.monotonic() - seen["since"] > STEADY_S)

    wait_for(settled, timeout, "every shake answered and counted on both sides")
