"""The numbers of a report: per-phase table, money balance and the 10-billion projection."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from hongbao.money import Balance
from hongbao.report.series import RunSeries

TEN_BILLION = 10**10
SEED_SERVERS = 600
SEED_WINDOW_S = 7 * 60


@dataclass(frozen=True)
class PhaseRow:
    name: str
    seconds: int
    target_qps: int
    client_mean_qps: float
    client_peak_qps: float
    server_mean_qps: float
    server_peak_qps: float
    loss_pct: float  # requests the client sent that got no response
    p50_ms: float  # median over the phase's seconds of each second's p50
    p99_ms: float  # median second's p99
    p99_worst_ms: float  # worst second's p99
    p999_worst_ms: float
    max_ms: float
    won: int
    claims: int


def _ms(values: list[float], pick: str) -> float:
    busy = [v for v in values if v > 0]
    if not busy:
        return 0.0
    return (statistics.median(busy) if pick == "median" else max(busy)) / 1000


def phase_rows(series: RunSeries) -> list[PhaseRow]:
    rows = []
    for span in series.phases:
        client_qps = series.window(series.client.get("requests", []), span)
        server_qps = series.window(series.server.get("requests", []), span)
        seconds = max(span.seconds, 1)
        sent = sum(client_qps)
        answered = series.total("client", "responses", span)
        lat = {k: series.window(v, span) for k, v in series.latency.items()}
        rows.append(PhaseRow(
            name=span.name, seconds=span.seconds, target_qps=span.target_qps,
            client_mean_qps=sent / seconds, client_peak_qps=max(client_qps, default=0),
            server_mean_qps=sum(server_qps) / seconds,
            server_peak_qps=max(server_qps, default=0),
            loss_pct=100 * max(0.0, sent - answered) / sent if sent else 0.0,
            p50_ms=_ms(lat.get("lat_p50_us", []), "median"),
            p99_ms=_ms(lat.get("lat_p99_us", []), "median"),
            p99_worst_ms=_ms(lat.get("lat_p99_us", []), "max"),
            p999_worst_ms=_ms(lat.get("lat_p999_us", []), "max"),
            max_ms=_ms(lat.get("lat_max_us", []), "max"),
            won=int(series.total("server", "won", span)),
            claims=int(series.total("server", "claims", span)),
        ))
    return rows


@dataclass(frozen=True)
class MoneyBalance:
    generated_amount: int
    won_amount: int
    queued_amount: int
    sent_amount: int
    claimed_amount: int
    unclaimed_amount: int
    source: str  # "ledger" or "counters"
    problems: tuple[str, ...]

    @property
    def shake_ok(self) -> bool:
        return self.generated_amount == self.won_amount + self.queued_amount

    @property
    def send_ok(self) -> bool:
        return (self.sent_amount == self.claimed_amount + self.unclaimed_amount
                and self.unclaimed_amount >= 0)

    @property
    def ok(self) -> bool:
        return self.shake_ok and self.send_ok and not self.problems


def money_balance(series: RunSeries, ledger: Balance | None) -> MoneyBalance:
    """From the ledgers when the run has them (and cross-checked against the counters),
    else from the counters alone."""
    counted = {k: int(series.total("server", k)) for k in (
        "generated_amount", "won_amount", "sent_amount", "claimed_amount")}
    if ledger is None:
        return MoneyBalance(
            counted["generated_amount"], counted["won_amount"],
            counted["generated_amount"] - counted["won_amount"], counted["sent_amount"],
            counted["claimed_amount"], counted["sent_amount"] - counted["claimed_amount"],
            "counters", ())
    problems = list(ledger.problems)
    for name in counted:
        if counted[name] != getattr(ledger, name):
            problems.append(f"{name}: counters say {counted[name]}, "
                            f"ledgers say {getattr(ledger, name)}")
    return MoneyBalance(
        ledger.generated_amount, ledger.won_amount, ledger.queued_amount, ledger.sent_amount,
        ledger.claimed_amount, ledger.unclaimed_amount, "ledger", tuple(problems))


@dataclass(frozen=True)
class Projection:
    per_server_qps: float
    phase: str
    seconds_on_600: float
    servers_for_7_minutes: int

    @staticmethod
    def seconds_for(servers: int, per_server_qps: float) -> float:
        return TEN_BILLION / (servers * per_server_qps)


def projection(series: RunSeries, rows: list[PhaseRow]) -> Projection | None:
    """Use the phase with the highest sustained server QPS, per server host."""
    if not rows:
        return None
    best = max(rows, key=lambda r: r.server_mean_qps)
    servers = max(1, len(series.hosts.get("server", [])))
    q = best.server_mean_qps / servers
    if q <= 0:
        return None
    return Projection(q, best.name, Projection.seconds_for(SEED_SERVERS, q),
                      math.ceil(TEN_BILLION / (SEED_WINDOW_S * q)))
