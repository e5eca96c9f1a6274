"""The issue's end-to-end scenario, with exact assertions on real processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hongbao.local.node_process import NodeProcess
from hongbao.local.phases import mark_phase
from hongbao.metrics.pointfile import read_points
from hongbao.money import ledger_files, reconcile
from hongbao.report.build import CHART_TITLES, write_report
from hongbao.report.series import build_series
from hongbao.report.sources import points_from_run_dir
from tests.e2e.nodes import start_client, start_server, wait_for, wait_settled, worker_pids

USERS = 4000


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """2 server workers, 2 client workers, 4,000 users; 1,000 QPS for 5 s, 500 shake
    packets at 200/s, 100 sent packets at 50/s; then both nodes drain on SIGTERM."""
    run_dir = tmp_path_factory.mktemp("run")
    server = start_server(run_dir, 2)
    client: NodeProcess | None = None
    try:
        client = start_client(run_dir, server, USERS, 2)
        wait_for(lambda: client.counters()["logins"] == USERS, 60, "every user logged in")
        mark_phase(run_dir, "test-run", "phase2", "start", "controller", 1000)
        server.get("/shake", qps=200, total=500)
        server.get("/send", qps=50, total=100, min_uid=0, max_uid=USERS - 1)
        client.get("/qps", qps=1000)
        wait_for(lambda: client.counters()["requests"] >= 5000, 30, "5 s of shakes at 1,000 QPS")
        quiet_while_shaking = server.status()["requests_quiet_s"]
        whole = client.status()["window"]
        first_two = client.get("/status", window_since=whole["since"],
                               window_until=whole["since"] + 2)["window"]
        wait_for(lambda: server.status()["queued"] == 0
                 and server.counters()["generated"] == 500, 20, "every shake packet won")
        client.get("/qps", qps=0)
        mark_phase(run_dir, "test-run", "phase2", "end", "controller", 1000)
        wait_for(lambda: client.counters()["claims"] == 300, 20, "every share claimed")
        wait_settled(server, client)
        worker_maps = {pid: Path(f"/proc/{pid}/maps").read_text()
                       for pid in worker_pids(server) + worker_pids(client)}
        wait_for(lambda: server.status()["requests_quiet_s"] >= 3, 20,
                 "no shake reaching the server for 3 s")
        result = {"server": server.counters(), "client": client.counters(),
                  "server_status": server.status(), "run_dir": run_dir,
                  "quiet_while_shaking": quiet_while_shaking,
                  "windows": (whole, first_two), "worker_maps": worker_maps}
    finally:
        codes = [client.stop() if client else None, server.stop()]
    result["exit_codes"] = codes
    return result


def test_every_user_is_logged_in(finished_run: dict) -> None:
    assert finished_run["server"]["logins"] == USERS
    assert finished_run["client"]["logins"] == USERS
    assert finished_run["client"]["connect_errors"] == 0


def test_server_requests_equal_client_responses(finished_run: dict) -> None:
    server, client = finished_run["server"], finished_run["client"]
    assert server["requests"] == client["responses"] == client["requests"]
    assert server["requests"] >= 5000
    assert client["timeouts"] == 0


def test_the_server_is_quiet_only_once_the_load_is_off(finished_run: dict) -> None:
    # requests_quiet_s: seconds since the server's requests last moved (the catch-up after
    # a phase waits for it); reading it while shaking finds a tick or two at most
    assert finished_run["quiet_while_shaking"] < 3
    assert finished_run["server_status"]["requests_quiet_s"] >= 3


def test_a_client_load_window_can_be_read_over_some_of_its_seconds(finished_run: dict) -> None:
    whole, first_two = finished_run["windows"]
    assert whole["seconds"] >= 3 and first_two["seconds"] == 2
    assert first_two["since"] == whole["since"]
    assert 0 < first_two["requests"] < whole["requests"]


def test_no_worker_loads_tls(finished_run: dict) -> None:
    """TLS would cost each worker 4.5 MB of RSS (hongbao/node/no_tls.py)."""
    maps = finished_run["worker_maps"]
    assert len(maps) == 4
    assert {pid: "libssl" in text or "_ssl." in text for pid, text in maps.items()} == \
        dict.fromkeys(maps, False)


def test_won_packets_equal_generated_packets(finished_run: dict) -> None:
    server, client = finished_run["server"], finished_run["client"]
    assert server["won"] == server["generated"] == client["won"] == 500
    assert server["won_amount"] == server["generated_amount"] == client["won_amount"]


def test_claims_equal_three_per_sent_packet(finished_run: dict) -> None:
    server, client = finished_run["server"], finished_run["client"]
    assert server["sent_packets"] == 100
    assert server["claims"] == client["claims"] == 3 * server["sent_packets"]
    assert server["claims_rejected"] == 0


def test_claimed_amounts_sum_exactly_to_sent_amount(finished_run: dict) -> None:
    server, client = finished_run["server"], finished_run["client"]
    assert server["claimed_amount"] == client["claimed_amount"] == server["sent_amount"]


def test_nodes_drain_and_exit_zero_on_sigterm(finished_run: dict) -> None:
    assert finished_run["exit_codes"] == [0, 0]


def test_ledger_reconciles_to_the_counters(finished_run: dict) -> None:
    balance = reconcile(ledger_files(finished_run["run_dir"]))
    server = finished_run["server"]
    assert balance.ok, balance.problems
    assert balance.generated_amount == balance.won_amount + balance.queued_amount
    assert (balance.won, balance.won_amount) == (server["won"], server["won_amount"])
    assert balance.claimed_amount == balance.sent_amount == server["sent_amount"]
    assert balance.fully_claimed == 100


def test_per_second_points_add_up_to_the_totals(finished_run: dict) -> None:
    run_dir: Path = finished_run["run_dir"]
    for role in ("server", "client"):
        points = [pt for path in (run_dir / "metrics").glob(f"{role}-*.lp")
                  for pt in read_points(path)]
        assert sum(pt.fields["requests"] for pt in points) == finished_run[role]["requests"]
        per_worker_seconds: dict[str, list[int]] = {}
        for pt in points:
            per_worker_seconds.setdefault(pt.tags["worker"], []).append(pt.time)
        for seconds in per_worker_seconds.values():
            assert seconds == list(range(seconds[0], seconds[-1] + 1)), "a second is missing"


def test_report_has_every_chart_and_a_balanced_ledger(finished_run: dict) -> None:
    run_dir: Path = finished_run["run_dir"]
    series = build_series(points_from_run_dir(run_dir), "test-run")
    report = write_report(series, run_dir / "report", reconcile(ledger_files(run_dir)), {})
    assert report.balance.ok and report.balance.source == "ledger"
    for name, _title in CHART_TITLES:
        assert report.charts[name].stat().st_size > 10_000
    assert {"balance", "projection"} <= set(report.charts)
    assert [row.name for row in report.phases] == ["phase2"]
    assert report.phases[0].won == 500
    html = report.html.read_text()
    assert "MISMATCH" not in html and html.count("<img") == len(report.charts)
