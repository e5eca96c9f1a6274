"""A server or client node started as a real process, reached through its control API.
Used by 'hongbao local-run', the end-to-end tests and the benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hongbao.node.control_params import TOKEN_ENV

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def control_get(address: str, path: str, token: str | None = None,
                **params: Any) -> dict[str, Any]:
    """GET a control API endpoint and decode its JSON; errors name the endpoint."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    url = f"http://{address}{path}{query}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{url}: {error.code} {error.read().decode()}") from None


@dataclass
class NodeProcess:
    name: str
    process: subprocess.Popen[bytes]
    control: str
    log_path: Path
    port: int = 0  # the server's listening port, for servers
    token: str | None = None  # the control API's bearer token, when it has one

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return control_get(self.control, path, self.token, **params)

    def status(self) -> dict[str, Any]:
        return self.get("/status")

    def counters(self) -> dict[str, int]:
        return self.status()["counters"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (the node drains), then SIGKILL after ``timeout``; returns the exit code
        (negative when it had to be killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -signal.SIGKILL

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; "
                                   f"see {self.log_path}")
            try:
                if self.status()["ready"]:
                    return
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; "
                                   f"see {self.log_path}")
            time.sleep(0.1)


def start_node(run_dir: Path, run_id: str, name: str, args: list[str],
               env: dict[str, str] | None = None, port: int = 0,
               ready_timeout: float = READY_TIMEOUT, log_dir: Path | None = None) -> NodeProcess:
    """Start ``hongbao ARGS`` with a free control port, its log under ``log_dir`` (default
    run_dir/logs), and wait until its control API says ready."""
    control = f"127.0.0.1:{free_port()}"
    log_path = (log_dir or run_dir / "logs") / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "hongbao", *args, "--control", control,
               "--run-id", run_id, "--run-dir", str(run_dir), "--host-name", name]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    token = (env or {}).get(TOKEN_ENV)
    node = NodeProcess(name, process, control, log_path, port, token)
    try:
        node.wait_ready(ready_timeout)
    except BaseException:  # not ready, or Ctrl-C while waiting: stop what we started
        node.stop(5)
        raise
    return node
