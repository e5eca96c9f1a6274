"""The numbers of a report: per-phase table, money balance and the 10-billion projection."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hongbao.metrics.histograms import percentiles
from hongbao.money import Balance
from hongbao.report.series import PhaseSpan, RunSeries

TEN_BILLION = 10**10
SEED_SERVERS = 600
SEED_WINDOW_S = 7 * 60


# A phase holds its target when all of these hold over its hold window (issue 8's knee rule).
MAX_P99_MS = 100.0
MIN_ANSWERED_PCT = 99.9
MIN_HELD_FRACTION = 0.995


@dataclass(frozen=True)
class PhaseRow:
    name: str
    seconds: int  # the whole phase, start mark to end mark
    target_connections: int | None
    connections: int  # the most server connections seen in the phase
    connect_seconds: int | None  # phase start -> the second from which it held the target
    target_qps: int
    hold_seconds: int  # the hold window: target rate set, ramp and marks excluded
    held_qps: float  # client requests per second, mean over the hold window
    server_held_qps: float  # server requests per second, mean over the hold window
    server_counts_late: bool  # server workers too busy to tick: their counts land after it
    sent: int  # client requests in the hold window
    answered_pct: float  # shakes not timed out / shakes sent, over the timeout window
    timeouts: int  # shakes unanswered within the timeout (see phase_rows)
    p50_ms: float  # percentiles of every latency in the hold window, all workers merged
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    won: int
    claims: int
    status: str  # "held" or "saturated"
    limit: str | None  # why it is saturated


def _through_end_mark(span: PhaseSpan) -> PhaseSpan:
    """The phase plus its end mark's second: a gate that saw every connection marks the
    end in the second it saw them, and the second's point comes at that second's end."""
    return PhaseSpan(span.name, span.start, span.end + 1, span.target_qps)


def _connect_seconds(series: RunSeries, span: PhaseSpan, target: int | None) -> int | None:
    if not target:
        return None
    connections = series.window(series.server.get("connections", []), _through_end_mark(span))
    # From the second the server came to hold the target for good: a server that held it
    # early and then lost connections (a lab whose earlier clients still ran, say, and
    # were stopped) took until the last rise to it.
    held_since = None
    for offset, value in enumerate(connections):
        if value < target:
            held_since = None
        elif held_since is None:
            held_since = offset + 1  # the second that reached it counts
    return held_since


def saturation_limits(row_qps: float, target_qps: int, answered_pct: float, p99_ms: float,
            skipped: float) -> list[str]:
    limits = []
    if p99_ms > MAX_P99_MS:
        limits.append(f"p99 {p99_ms:,.1f} ms > {MAX_P99_MS:.0f} ms")
    if answered_pct < MIN_ANSWERED_PCT:
        limits.append(f"answered {answered_pct:.3f}% < {MIN_ANSWERED_PCT}%")
    if row_qps < MIN_HELD_FRACTION * target_qps:
        limits.append(f"held {row_qps:,.0f} of {target_qps:,} QPS"
                      + (f" (client send lag: {skipped:,.0f} sends skipped)" if skipped else ""))
    return limits


def starvation_limits(series: RunSeries, hold: PhaseSpan) -> list[str]:
    """Control-plane starvation: workers too busy serving a backlog to tick (their counts
    land late, after the hold), by role."""
    limits = []
    for role in ("server", "client"):
        late = series.most_late_workers(role, hold)
        if late:
            limits.append(f"control-plane starvation: up to {late:,} {role} workers "
                          "too busy to tick")
    return limits


def _timeout_window(series: RunSeries, index: int) -> PhaseSpan:
    """From the phase's start to the next phase's start (or the run's end): shakes sent
    late in a phase expire after its end mark."""
    span = series.phases[index]
    end = (series.phases[index + 1].start if index + 1 < len(series.phases)
           else series.seconds[-1] + 1)
    return PhaseSpan(span.name, span.start, max(end, span.end), span.target_qps)


def answered_share_pct(sent: float, timeouts: float) -> float:
    """Shakes not timed out, as a share of those sent, both over the timeout window. The
    responses counted in the hold window would not do: a shake sent in its last second and
    answered in the next counts as sent but not answered, and at a low rate that alone
    falls below 99.9%."""
    return max(0.0, 100 * (sent - timeouts) / sent) if sent else 100.0


def phase_rows(series: RunSeries) -> list[PhaseRow]:
    rows = []
    for index, span in enumerate(series.phases):
        hold = span.hold
        hold_seconds = max(hold.seconds, 0)
        sent = series.total("client", "requests", hold)
        timeout_window = _timeout_window(series, index)
        timeouts = series.total("client", "timeouts", timeout_window)
        answered_pct = answered_share_pct(
            series.total("client", "requests", timeout_window), timeouts)
        held_qps = sent / hold_seconds if hold_seconds else 0.0
        latency = percentiles(series.merged_latency(hold))
        p99_ms = latency["lat_p99_us"] / 1000
        connections = int(max(series.window(series.server.get("connections", []),
                                            _through_end_mark(span)), default=0))
        if span.target_qps:
            limits = saturation_limits(held_qps, span.target_qps, answered_pct, p99_ms,
                                       series.total("client", "send_skipped", hold))
            limits += starvation_limits(series, hold)
        elif span.target_connections and connections < span.target_connections:
            limits = [f"reached {connections:,} of {span.target_connections:,} connections"]
        else:
            limits = []
        rows.append(PhaseRow(
            name=span.name, seconds=span.seconds, target_connections=span.target_connections,
            connections=connections,
            connect_seconds=(None if span.target_qps else
                             _connect_seconds(series, span, span.target_connections)),
            target_qps=span.target_qps, hold_seconds=hold_seconds, held_qps=held_qps,
            server_held_qps=(series.total("server", "requests", hold) / hold_seconds
                             if hold_seconds else 0.0),
            server_counts_late=bool(span.target_qps)
            and series.most_late_workers("server", hold) > 0,
            sent=int(sent), answered_pct=answered_pct,
            timeouts=int(timeouts),
            p50_ms=latency["lat_p50_us"] / 1000, p90_ms=latency["lat_p90_us"] / 1000,
            p99_ms=p99_ms, p999_ms=latency["lat_p999_us"] / 1000,
            max_ms=latency["lat_max_us"] / 1000,
            won=int(series.total("server", "won", span)),
            claims=int(series.total("server", "claims", span)),
            status="saturated" if limits else "held",
            limit="; ".join(limits) or None,
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
    lost_in_crash_amount: int = 0  # queued in a worker that died without its end record

    @property
    def shake_ok(self) -> bool:
        return (self.generated_amount
                == self.won_amount + self.queued_amount + self.lost_in_crash_amount)

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
        ledger.claimed_amount, ledger.unclaimed_amount, "ledger", tuple(problems),
        ledger.lost_in_crash_amount)


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
    """Use the phase with the highest sustained server QPS, per server host (not one whose
    server counts landed late: a backlog served after it would inflate another's)."""
    measured = [row for row in rows if not row.server_counts_late]
    if not measured:
        return None
    best = max(measured, key=lambda r: r.server_held_qps)
    servers = max(1, len(series.hosts.get("server", [])))
    q = best.server_held_qps / servers
    if q <= 0:
        return None
    return Projection(q, best.name, Projection.seconds_for(SEED_SERVERS, q),
                      math.ceil(TEN_BILLION / (SEED_WINDOW_S * q)))


# The phase table's columns, each with its definition (printed as the table's legend).
PHASE_COLUMNS: list[tuple[str, str]] = [
    ("phase", "the phase's name, from its start and end marks"),
    ("s", "seconds from the phase's start mark to its end mark"),
    ("conns", "the most server connections seen from the phase's start to its end mark's "
              "second / the target connections"),
    ("conn s", "seconds from the phase's start until the server held the target "
               "connections ('-': not a connect phase, or never reached)"),
    ("hold s", "seconds in the hold window: from the first whole second after the target "
               "rate was set to the hold_end mark (ramp and marks excluded; the whole "
               "phase when no hold was marked)"),
    ("target", "the shake rate asked of all clients together"),
    ("held", "shakes the clients sent per second, mean over the hold window"),
    ("server", "shakes the server received per second, mean over the hold window ('late': "
               "server workers too busy to tick in it, so their counts landed after it)"),
    ("answer %", "shakes that did not time out, as a share of the shakes sent, both counted "
                 "from the phase's start to the next phase's start"),
    ("timeouts", "shakes that got no answer within the client's timeout (a later answer "
                 "counts here), counted from the phase's start to the next phase's start "
                 "(shakes still in flight at the end mark are not counted)"),
    ("p50 p90 p99 p99.9 max", "latency in ms from each shake's intended send time to its "
     "answer, over every shake answered within the timeout in the hold window, all client "
     "workers and hosts merged into one HdrHistogram"),
    ("status", f"held, or saturated when p99 > {MAX_P99_MS:.0f} ms, answered < "
               f"{MIN_ANSWERED_PCT}% or held < {MIN_HELD_FRACTION * 100:.1f}% of target, "
               "or when workers were too busy to tick (control-plane starvation; phase1: "
               "when the target connections were not reached); the reason follows"),
]


def phase_cells(row: PhaseRow) -> list[str]:
    """A row's cells, in PHASE_COLUMNS order (the five latency columns apart)."""
    def ms(value: float) -> str:
        return f"{value:,.2f}"

    conns = f"{row.connections:,}" + (f" / {row.target_connections:,}"
                                      if row.target_connections else "")
    connect = "-" if row.connect_seconds is None else str(row.connect_seconds)
    if not row.target_qps:  # a connect phase: no rate to hold
        return [row.name, str(row.seconds), conns, connect, *["-"] * 5, f"{row.timeouts:,}",
                *["-"] * 5, row.status]
    return [row.name, str(row.seconds), conns, connect,
            str(row.hold_seconds), f"{row.target_qps:,}", f"{row.held_qps:,.0f}",
            "late" if row.server_counts_late else f"{row.server_held_qps:,.0f}",
            f"{row.answered_pct:.3f}", f"{row.timeouts:,}",
            ms(row.p50_ms), ms(row.p90_ms), ms(row.p99_ms), ms(row.p999_ms), ms(row.max_ms),
            row.status]


PHASE_HEADINGS = [*(c for c, _ in PHASE_COLUMNS[:10]),
                  "p50", "p90", "p99", "p99.9", "max", "status"]


MAX_CLOCK_OFFSET_MS = 5.0


@dataclass(frozen=True)
class ClockAgreement:
    offsets_ms: dict[str, float]  # host -> offset from chrony's reference at the start

    @property
    def off(self) -> dict[str, float]:
        return {h: v for h, v in self.offsets_ms.items() if abs(v) > MAX_CLOCK_OFFSET_MS}

    @property
    def ok(self) -> bool:
        return not self.off


def clock_agreement(series: RunSeries) -> ClockAgreement | None:
    return ClockAgreement(dict(sorted(series.clock_offsets_ms.items()))) \
        if series.clock_offsets_ms else None
