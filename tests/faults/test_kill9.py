"""kill -9 mid-run, with clients shaking and both generators running: every cent the
clients received is in the ledger, exactly, and ``ledger check`` names the crash."""

from __future__ import annotations

from pathlib import Path

from hongbao.money import reconcile
from tests.e2e.nodes import NodeProcess, kill_hard, start_server, wait_for, worker_pids
from tests.faults.load import (
    connect_clients,
    ledger_check,
    ledgers,
    received_and_paid,
    start_paying,
    stop_paying,
    wait_for_payouts,
)


def test_kill_9_of_one_worker_loses_no_payment(tmp_path: Path) -> None:
    server = start_server(tmp_path, 2)
    client: NodeProcess | None = None
    try:
        client = connect_clients(tmp_path, server)
        start_paying(server, client)
        wait_for_payouts(server, 150, 60, "payouts before the kill")
        victim = worker_pids(server)[0]
        kill_hard([victim])
        won_at_kill = client.counters()["won"]
        wait_for(lambda: client.counters()["won"] >= won_at_kill + 150, 30,
                 "the other worker paying on")
        stop_paying(server, client)
    finally:
        client_code = client.stop() if client else None
        server.stop()
    assert client_code == 0
    received, paid = received_and_paid(tmp_path, tmp_path)
    assert received == paid
    (victim_ledger,) = (tmp_path / "ledger").glob(f"*-{victim}.tsv")
    balance = ledgers(tmp_path)
    assert balance.crashed == [victim_ledger.name]
    in_crashed_file = reconcile([victim_ledger])
    assert in_crashed_file.won > 0 and in_crashed_file.claims > 0  # it was paying when killed
    code, report = ledger_check(tmp_path, tmp_path)
    assert code == 1, report
    assert f"crashed: 1 worker ledgers without an end record: {victim_ledger.name}" \
        in report
    assert f"{victim_ledger.name}: no end record: its worker crashed" in report
    assert f"lost in crash {balance.lost_in_crash} ({balance.lost_in_crash_amount})" \
        in report
    assert f"clients received: won {received['won']} ({received['won_amount']} cents), " \
           f"claimed {received['claims']} ({received['claimed_amount']} cents)  OK" \
        in report


def test_kill_9_of_the_server_node_and_its_workers_loses_no_payment(tmp_path: Path) -> None:
    server = start_server(tmp_path, 2)
    client: NodeProcess | None = None
    try:
        client = connect_clients(tmp_path, server)
        start_paying(server, client)
        wait_for_payouts(server, 200, 60, "payouts before the kill")
        workers = worker_pids(server)
        kill_hard([*workers, server.process.pid])  # the workers first: none may drain
        stop_paying(None, client)
    finally:
        client_code = client.stop() if client else None
        server.stop()
    assert client_code == 0
    received, paid = received_and_paid(tmp_path, tmp_path)
    assert received == paid
    assert received["won"] >= 200 and received["claims"] >= 60
    balance = ledgers(tmp_path)
    assert sorted(balance.crashed) == sorted(
        path.name for pid in workers for path in (tmp_path / "ledger").glob(f"*-{pid}.tsv"))
    assert len(balance.crashed) == 2
    code, report = ledger_check(tmp_path, tmp_path)
    assert code == 1, report
    assert "crashed: 2 worker ledgers without an end record" in report
    assert "clients received: " in report and "cents)  OK" in report
