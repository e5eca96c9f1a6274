"""What the clients say they received (their per-second metrics), checked against what the
ledgers say was paid: ``hongbao ledger check --against RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

from hongbao.metrics.pointfile import metrics_dir, read_points
from hongbao.money import Balance

RECEIVED_FIELDS = ("won", "won_amount", "claims", "claimed_amount")


def client_received(run_dir: Path) -> dict[str, int]:
    """Totals of the clients' won and claimed counts and amounts: the sum of their
    per-second points (each point holds that second's increase). A claim answered with 0
    cents paid nothing (our server answers a stranger's, a double or a degraded worker's
    claim so), so ``claims`` counts only the paid ones, as the ledger does."""
    files = sorted(metrics_dir(run_dir).glob("client-*.lp"))
    if not files:
        raise ValueError(f"no client metrics (client-*.lp) under {metrics_dir(run_dir)}")
    totals = dict.fromkeys(RECEIVED_FIELDS, 0)
    for path in files:
        for point in read_points(path):
            if point.measurement == "client":
                for name in RECEIVED_FIELDS:
                    totals[name] += int(point.fields.get(name, 0))
                totals["claims"] -= int(point.fields.get("claims_zero", 0))
    return totals


def paid_by_ledger(balance: Balance) -> dict[str, int]:
    return {"won": balance.won, "won_amount": balance.won_amount,
            "claims": balance.claims, "claimed_amount": balance.claimed_amount}


def received_differences(received: dict[str, int], balance: Balance) -> list[str]:
    """One line per total on which the clients and the ledgers disagree."""
    paid = paid_by_ledger(balance)
    return [
        f"clients received {name} {received[name]}, ledgers paid {paid[name]} "
        f"(clients {received[name] - paid[name]:+})"
        for name in RECEIVED_FIELDS if received[name] != paid[name]
    ]
