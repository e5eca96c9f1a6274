"""``ledger check --against``: the clients' received totals, from their metrics, must equal
what the ledgers paid."""

from __future__ import annotations

from pathlib import Path

import pytest

from hongbao.cli import main
from hongbao.metrics.emitter import PerSecondEmitter
from hongbao.metrics.pointfile import PointFile
from hongbao.money import LedgerWriter


def write_run(run_dir: Path, client_won_amounts: list[int]) -> None:
    """A clean ledger paying 100 + 250 cents and 3 claims of 30; clients that received
    one win per amount in ``client_won_amounts`` and the 3 claims, over several seconds
    and two client workers."""
    ledger = LedgerWriter(run_dir / "ledger" / "srv-w0-1.tsv")
    ledger.generated(0x100000, 100)
    ledger.generated(0x100001, 250)
    ledger.won(0x100000, 1, 100)
    ledger.won(0x100001, 2, 250)
    ledger.sent(0x200000, 90, [1, 2, 3], [30, 30, 30])
    for user in (1, 2, 3):
        ledger.claimed(0x200000, user, 30)
    ledger.close()
    for worker, amounts in enumerate((client_won_amounts[:1], client_won_amounts[1:])):
        emitter = PerSecondEmitter(PointFile(run_dir, f"client-c-w{worker}"), "client",
                                   {"host": "c", "worker": str(worker)})
        totals = {"won": 0, "won_amount": 0, "claims": 0, "claimed_amount": 0}
        for second, amount in enumerate(amounts, start=1000):
            totals["won"] += 1
            totals["won_amount"] += amount
            emitter.emit(second, totals)
        totals["claims"] += 1 + worker
        totals["claimed_amount"] += 30 * (1 + worker)
        emitter.emit(2000, totals)


def test_received_equal_to_paid_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path, [100, 250])
    assert main(["ledger", "check", str(tmp_path), "--against"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "clients received: won 2 (350 cents), claimed 3 (90 cents)  OK"
    assert "ledger: OK" in out


def test_a_payment_missing_from_the_ledger_fails(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path, [100, 250, 7])
    clients_dir = tmp_path / "elsewhere"
    write_run(clients_dir, [100, 250, 7])
    assert main(["ledger", "check", str(tmp_path), "--against", str(clients_dir)]) == 1
    out = capsys.readouterr().out
    assert "  - clients received won 3, ledgers paid 2 (clients +1)" in out
    assert "  - clients received won_amount 357, ledgers paid 350 (clients +7)" in out
    assert "claims" not in out.split("ledger: MISMATCH")[1]


def test_against_a_directory_without_client_metrics_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path, [100, 250])
    assert main(["ledger", "check", str(tmp_path), "--against", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err == (f"hongbao ledger: error: no client metrics (client-*.lp) "
                                       f"under {tmp_path / 'nothing' / 'metrics'}\n")
