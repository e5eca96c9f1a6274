"""A small paying load for the fault tests, and what they read back once it is over: the
clients' received totals, the ledgers, and the real ``hongbao ledger check``."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from hongbao.cli import main
from hongbao.local.node_process import NodeProcess
from hongbao.money import Balance, ledger_files, reconcile
from hongbao.received import RECEIVED_FIELDS, client_received, paid_by_ledger
from tests.e2e.nodes import start_client, wait_for, wait_until_steady

USERS = 1500
QPS = 800
SHAKE_RATE = 200  # shake packets/s over the server's workers
SEND_RATE = 40  # sent packets/s, 3 claims each


def connect_clients(run_dir: Path, server: NodeProcess) -> NodeProcess:
    client = start_client(run_dir, server, USERS, 2)
    wait_for(lambda: client.counters()["logins"] == USERS, 30, "every user logged in")
    return client


def start_paying(server: NodeProcess, client: NodeProcess) -> None:
    server.get("/shake", qps=SHAKE_RATE)
    server.get("/send", qps=SEND_RATE, min_uid=0, max_uid=USERS - 1)
    client.get("/qps", qps=QPS)


def received_by_client(client: NodeProcess) -> dict[str, int]:
    """What the client was paid so far: a claim answered with 0 cents paid nothing."""
    counters = client.counters()
    paid = {name: counters[name] for name in RECEIVED_FIELDS}
    paid["claims"] -= counters["claims_zero"]
    return paid


def wait_for_payouts(node: NodeProcess, won: int, claims: int, what: str) -> None:
    wait_for(lambda: node.counters()["won"] >= won and node.counters()["claims"] >= claims,
             30, what)


def stop_paying(server: NodeProcess | None, client: NodeProcess) -> dict[str, int]:
    """Stop the generators (if the server still answers) and the shakes, then wait until
    the clients' received totals stop moving; return them."""
    if server is not None:
        server.get("/shake", qps=0)
        server.get("/send", qps=0)
    client.get("/qps", qps=0)
    return wait_until_steady(lambda: received_by_client(client), 30,  # type: ignore[return-value]
                             "the clients' received totals")


def ledgers(run_dir: Path) -> Balance:
    return reconcile(ledger_files(run_dir))


def received_and_paid(client_run_dir: Path, server_run_dir: Path) -> tuple[dict, dict]:
    return client_received(client_run_dir), paid_by_ledger(ledgers(server_run_dir))


def ledger_check(run_dir: Path, against: Path) -> tuple[int, str]:
    """``hongbao ledger check RUN_DIR --against AGAINST``: its exit status and output."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = main(["ledger", "check", str(run_dir), "--against", str(against)])
    return code, output.getvalue()
