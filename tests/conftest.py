"""Shared fixtures: a real InfluxDB 1.x server (Debian's influxd) on loopback."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hongbao.local.node_process import free_port

INFLUXD = Path("/usr/bin/influxd")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

CONFIG_TEMPLATE = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


class InfluxDBServer:
    """One influxd process with its data in ``root``; stop() and start() keep the data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.config_path = root / "influxdb.conf"
        self.config_path.write_text(CONFIG_TEMPLATE.format(
            root=root, rpc_port=free_port(), http_port=self.http_port))
        self.log_path = root / "influxd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                return response.status == 204
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [str(INFLUXD), "run", "-config", str(self.config_path)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ping():
            if self.process.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.process.returncode}:\n"
                                   f"{self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"influxd did not answer /ping on {self.url} within "
                                   f"{START_TIMEOUT_S:g} s:\n{self._log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def query(self, influxql: str, db: str) -> list[dict[str, Any]]:
        """Rows of the first statement, each a dict of its columns plus its series' tags
        (times in unix seconds)."""
        address = f"{self.url}/query?" + urllib.parse.urlencode(
            {"db": db, "q": influxql, "epoch": "s"})
        with urllib.request.urlopen(address, timeout=10) as response:
            result = json.load(response)["results"][0]
        if "error" in result:
            raise AssertionError(f"InfluxDB rejected {influxql!r}: {result['error']}")
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                rows.append(row)
        return rows


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDBServer]:
    """A real InfluxDB 1.x on 127.0.0.1 (Debian package 'influxdb'), shared by the session.
    Tests use their own databases; a test that stops it must start it again."""
    if not INFLUXD.exists() or shutil.which(str(INFLUXD)) is None:
        pytest.skip(f"{INFLUXD} is missing: install the Debian package 'influxdb' "
                    "(scripts/debian-packages.txt) to run the InfluxDB tests")
    server = InfluxDBServer(tmp_path_factory.mktemp("influxdb"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
