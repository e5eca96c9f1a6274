"""The server's run directory fills up mid-run: its workers stop paying out, say so once
each, report ``degraded``, keep answering and ticking, and the node exits non-zero. No
client is paid anything the ledger does not hold."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.nodes import NodeProcess, start_server, wait_for
from tests.faults.load import (
    connect_clients,
    ledger_check,
    ledgers,
    received_and_paid,
    received_by_client,
    start_paying,
    stop_paying,
    wait_for_payouts,
)

DISK_BYTES = 1024 * 1024
LEDGER_ERROR = "cannot be written (No space left on device): this worker stops paying out"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs",
                    str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def fill(disk: Path) -> None:
    """Write zeros until the file system says it is full."""
    chunk = bytes(64 * 1024)
    with (disk / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(chunk)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise


def test_a_full_disk_stops_payouts_loudly(tiny_disk: Path, tmp_path: Path) -> None:
    client_dir, logs = tmp_path / "clients", tmp_path / "logs"
    server = start_server(tiny_disk, 2, log_dir=logs)
    client: NodeProcess | None = None
    try:
        client = connect_clients(client_dir, server)
        start_paying(server, client)
        wait_for_payouts(server, 100, 30, "payouts before the disk fills")
        fill(tiny_disk)
        wait_for(lambda: len(server.status()["degraded_workers"]) == 2, 20,
                 "both workers degraded")
        status = server.status()
        wait_for(lambda: server.counters()["requests"] >= status["counters"]["requests"] + 500,
                 20, "a tick after the failure")
        paid_at_failure = received_by_client(client)
        answered = server.counters()["requests"]
        wait_for(lambda: server.counters()["requests"] >= answered + 1000, 20,
                 "the degraded workers answering and ticking on")
        paid_later = received_by_client(client)
        stop_paying(server, client)
        server_counted = server.counters()
    finally:
        client_code = client.stop() if client else None
        server_code = server.stop()
    assert status["degraded"] is True
    assert {key: value["ledger"] for key, value in status["degraded_workers"].items()} == \
        {"0": "No space left on device", "1": "No space left on device"}
    assert paid_later == paid_at_failure  # 1,000 shakes answered, nothing paid
    assert client_code == 0
    assert server_code == 1
    server_log = (logs / "server.log").read_text()
    assert server_log.count(LEDGER_ERROR) == 2, server_log  # once per worker
    received, paid = received_and_paid(client_dir, tiny_disk)
    assert received == paid
    assert {name: server_counted[name] for name in paid} == paid  # payouts taken back
    assert received["won"] >= 100 and received["claims"] >= 30
    assert len(ledgers(tiny_disk).crashed) == 2  # neither could write its end record
    code, report = ledger_check(tiny_disk, client_dir)
    assert code == 1, report
    assert "crashed: 2 worker ledgers without an end record" in report
    assert "cents)  OK" in report.splitlines()[0]

