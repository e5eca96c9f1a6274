"""Real server and client node processes on loopback, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hongbao.localrun import control_get, free_port


@dataclass
class NodeProcess:
    name: str
    process: subprocess.Popen[bytes]
    control: str
    log_path: Path
    port: int = 0

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return control_get(self.control, path, **params)

    def status(self) -> dict[str, Any]:
        return self.get("/status")

    def counters(self) -> dict[str, int]:
        return self.status()["counters"]

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} did not drain in {timeout} s") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_node(run_dir: Path, name: str, args: list[str], extra_env: dict[str, str] | None = None,
               ready_timeout: float = 60) -> NodeProcess:
    control = f"127.0.0.1:{free_port()}"
    log_path = run_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "hongbao.cli", *args, "--control", control,
               "--run-id", "test-run", "--run-dir", str(run_dir), "--host-name", name]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(extra_env or {})})
    node = NodeProcess(name, process, control, log_path)
    wait_for(lambda: _ready(node), ready_timeout, f"{name} ready")
    return node


def _ready(node: NodeProcess) -> bool:
    if node.process.poll() is not None:
        raise AssertionError(f"{node.name} exited with {node.process.returncode}:\n{node.log()}")
    try:
        return bool(node.status()["ready"])
    except OSError:
        return False


def start_server(run_dir: Path, workers: int = 2, *extra: str,
                 env: dict[str, str] | None = None) -> NodeProcess:
    port = free_port()
    node = start_node(run_dir, "server", ["server", "--listen", "127.0.0.1", "--port", str(port),
                                          "--workers", str(workers), "--seed", "7", *extra], env)
    node.port = port
    return node


def start_client(run_dir: Path, server: NodeProcess, users: int, workers: int = 2,
                 name: str = "client01", first_user: int = 0, *extra: str,
                 env: dict[str, str] | None = None) -> NodeProcess:
    return start_node(run_dir, name, [
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
                    "--event", event, "--run-id", "test-run", "--run-dir", str(run_dir)],
                   check=True, capture_output=True, env={**os.environ, **(env or {})})
