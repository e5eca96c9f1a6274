"""Shared fixtures: a real InfluxDB 1.x server (Debian's influxd) on loopback. And the
groups of pytest-xdist: ``make test`` runs the suite on parallel workers (``-n 3 --dist
loadscope``), and tests that share a system resource run in one group, on one worker, one at
a time."""

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

TESTS = Path(__file__).resolve().parent
# Paths (a directory or a module, relative to tests/) whose tests share a resource beyond
# their temp dirs. Every other module is a group of its own, so its module fixtures start once.
SHARED_RESOURCE_GROUPS = {
    # the hbpbt- lab of 4 hosts with its InfluxDB and chrony
    "playbooks": "playbooks-lab",
    # hbm-/hbmt- instances and /var/tmp/hongbao-molecule, which the first scenario empties
    "molecule": "molecule",
    # real loads on loopback: their rates and latencies are judged, so they never overlap
    # one another (and one influxd serves them)
    "e2e": "loopback-loads",
    "faults": "loopback-loads",
    "supervise": "loopback-loads",
    "monitor": "loopback-loads",
    "grafana/test_queries_on_real_run.py": "loopback-loads",
    "metrics/test_ship_command.py": "loopback-loads",
    "metrics/test_ship_to_influxdb1.py": "loopback-loads",
}

# The longest groups, longest first (make test: molecule 14 min, the playbooks 10 min).
LONG_GROUPS = ["molecule", "playbooks-lab", "loopback-loads"]

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


def resource_group(nodeid: str) -> str:
    """The group of a test id (``tests/e2e/test_core_run.py::test_x``)."""
    relative = Path(nodeid.split("::")[0]).relative_to(TESTS.name)
    for prefix in (relative.as_posix(), *(parent.as_posix() for parent in relative.parents)):
        if prefix in SHARED_RESOURCE_GROUPS:
            return SHARED_RESOURCE_GROUPS[prefix]
    return relative.as_posix()


def _long_first(item: pytest.Item) -> int:
    group = resource_group(item.nodeid)
    return LONG_GROUPS.index(group) if group in LONG_GROUPS else len(LONG_GROUPS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadscope`` the long groups go first, one to each worker (make test
    adds --no-loadscope-reorder to keep this order): a worker takes its next group only
    when its current one is nearly done, so the short modules fill the first one free."""
    if config.getoption("dist", "no") == "loadscope":
        items.sort(key=_long_first)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` with our groups for scopes. (xdist's own ``loadgroup`` marks
    are lost under pytest 9, which no longer reads the node id xdist rewrites.)"""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ResourceGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return resource_group(nodeid)

    return ResourceGroupScheduling(config, log)


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
