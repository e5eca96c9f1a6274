"""Every sizing rule: workers from connections and the open-files limit, who holds which
users, QPS shares, reserves.

``hongbao plan targets|server|clients`` print JSON for Ansible: the run's targets at a
scale, the server's workers, each client's first user, user count, workers and QPS shares,
so the roles never compute numbers in Jinja.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hongbao import flags
from hongbao.flags import UsageError

PORTS_PER_ADDRESS = 51000  # the default --source-ports 10000-60999
SEED_CONNECTIONS = 1_000_000
SEED_PHASE_QPS = {"phase1": 0, "phase2": 30_000, "phase3": 60_000}
MAX_SCALE = 10.0
FD_RESERVE = 200  # per worker: listeners, pipes, log and metric files, the control API
# SO_REUSEPORT spreads a server's connections over its workers by a hash of the 4-tuple, not
# evenly: at 1M over 51 workers sized to 99% of their open-files room, 15 workers reached
# their cap and the users hashed to them never logged in. Server workers are sized to fill
# this share of it (the spread is about 140 connections, one standard deviation, at 20k).
SERVER_FILL = 0.95


def open_files_limit() -> int:
    """This process's open-files limit (the soft one, which is what accept() hits)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connections_per_worker(limit: int | None = None) -> int:
    limit = open_files_limit() if limit is None else limit
    if limit <= FD_RESERVE:
        raise ValueError(f"open-files limit {limit} leaves no room for connections")
    return limit - FD_RESERVE


def workers_for(connections: int, limit: int | None = None, minimum: int = 1,
                fill: float = 1.0) -> int:
    """The fewest workers that hold ``connections`` within the open-files limit, each
    filled to at most ``fill`` of it."""
    return max(minimum, math.ceil(connections / (connections_per_worker(limit) * fill)))


def node_workers(count: int | None, connections: int, minimum: int,
                 limit: int | None = None, fill: float = 1.0) -> int:
    """A node's worker count: ``count``, checked to hold ``connections`` under the
    open-files limit (default this process's), or for None ('auto') the fewest that do
    when filled to ``fill``, at least ``minimum``."""
    if count is None:
        return workers_for(connections, limit, minimum, fill)
    per_worker = connections_per_worker(limit)
    if connections > count * per_worker:
        raise ValueError(
            f"{connections} connections do not fit {count} workers x {per_worker} "
            "(open-files limit): use --workers auto or more workers")
    return count


KNEE_MAX_STEPS = 12
PROGRESS_EVERY_S = 10  # a long wait in a play prints a line this often
# The knee search starts at a sixteenth of phase 2's rate: at 1M connections on 2 cores an
# eighth (3,750 QPS) held p99 at 115-145 ms once settled, so no step held and the knee
# stayed unknown.
KNEE_START_OF_PHASE2 = 0.0625
KNEE_MAX_OF_PHASE3 = 2.0  # and stops at twice phase 3's
KNEE_FACTOR = 1.4
# When even the first step saturates, the search steps down by the same factor, at most
# this many times, to find a load the box does hold (at 1M connections 1,875 QPS held
# p99 at 115.7 ms, so the knee stayed unknown).
KNEE_MAX_STEPS_BELOW = 5


@dataclass(frozen=True)
class Targets:
    connections: int
    qps: dict[str, int]  # phase name -> shakes per second in all
    shake_total: int  # red packets generated over one phase's hold
    send_total: int  # red packets sent over one phase's hold
    knee_steps: list[int]  # the knee search's QPS steps, in order
    knee_steps_below: list[int]  # tried, falling, when the first step saturates
    knee_steps_between: list[int]  # one tried between the highest held and the next one up
    last_user: int  # users are 0..last_user
    hold_steps: list[int]  # one phase's hold, in waits of at most PROGRESS_EVERY_S seconds


def plan_targets(scale: float, phase_seconds: int, shake_rate: float,
                 send_rate: float, knee_max_steps: int = KNEE_MAX_STEPS) -> Targets:
    """The seed's targets at ``scale`` (1.0: 1M connections, 30k then 60k QPS)."""
    if not 0 < scale <= MAX_SCALE:
        raise ValueError(f"scale must be > 0 and <= {MAX_SCALE:g}, got {scale:g}")
    qps = {name: round(rate * scale) for name, rate in SEED_PHASE_QPS.items()}
    knee_start = max(1, round(qps["phase2"] * KNEE_START_OF_PHASE2))
    rising = knee_steps(knee_start, KNEE_FACTOR,
                        max(1, round(qps["phase3"] * KNEE_MAX_OF_PHASE3)), knee_max_steps)
    below = knee_steps_below(knee_start, KNEE_FACTOR, KNEE_MAX_STEPS_BELOW)
    return Targets(
        connections=round(SEED_CONNECTIONS * scale),
        qps=qps,
        shake_total=int(shake_rate * phase_seconds),
        send_total=int(send_rate * phase_seconds),
        knee_steps=rising,
        knee_steps_below=below,
        knee_steps_between=knee_steps_between([*below, *rising]),
        last_user=round(SEED_CONNECTIONS * scale) - 1,
        hold_steps=waits(phase_seconds, PROGRESS_EVERY_S))


def waits(seconds: int, every: int) -> list[int]:
    """``seconds`` as waits of ``every`` seconds and a shorter last one."""
    return [every] * (seconds // every) + ([seconds % every] if seconds % every else [])


def knee_steps_below(start: int, factor: float, max_steps: int) -> list[int]:
    """Falling QPS steps under ``start`` for a knee search whose first step saturated:
    ``start`` / ``factor``, / ``factor`` again, ... at most ``max_steps``, none under 1."""
    steps: list[int] = []
    current = start
    while len(steps) < max_steps and (current := min(current - 1, round(current / factor))) >= 1:
        steps.append(current)
    return steps


def knee_steps_between(steps: Sequence[int]) -> list[int]:
    """The geometric middle of each two neighbouring knee steps (rising and below, in any
    order), where a whole QPS fits strictly between them."""
    pairs = itertools.pairwise(sorted(set(steps)))
    middles = ((low, round(math.sqrt(low * high)), high) for low, high in pairs)
    return [middle for low, middle, high in middles if low < middle < high]


def next_knee_step(rising: list[int], below: list[int],
                   verdicts: Sequence[Mapping[str, Any]],
                   between: Sequence[int] = ()) -> int | None:
    """The knee search's next QPS, or None when it is over. It climbs ``rising`` while
    every step holds; if the very first one saturated, it walks down ``below`` until one
    holds, so the highest step held is known whenever the box holds any of them. Once a
    held step and a saturated one above it bracket the knee, it tries the step of
    ``between`` inside that bracket, if any and not yet tried, and ends."""
    if not verdicts:
        return rising[0]
    held = [int(v["qps"]) for v in verdicts if v["held"]]
    saturated = [int(v["qps"]) for v in verdicts if not v["held"]]
    if not saturated:  # climbing
        return next((qps for qps in rising if qps > max(held)), None)
    if not held:  # walking down
        return next((qps for qps in below if qps < min(saturated)), None)
    highest_held = max(held)
    ceiling = min((qps for qps in saturated if qps > highest_held), default=None)
    if ceiling is None:
        return None
    tried = {*held, *saturated}
    return next((qps for qps in between
                 if highest_held < qps < ceiling and qps not in tried), None)


def knee_steps(start: int, factor: float, maximum: int,
               max_steps: int = KNEE_MAX_STEPS) -> list[int]:
    """Rising QPS steps for the knee search: ``start``, x ``factor``, ... up to ``maximum``,
    at most ``max_steps`` of them."""
    if start < 1 or factor <= 1 or maximum < start or max_steps < 1:
        raise ValueError(f"knee steps need 1 <= start <= maximum, factor > 1 and at least "
                         f"one step, got start {start}, factor {factor:g}, maximum {maximum}, "
                         f"{max_steps} steps")
    steps = [start]
    while steps[-1] < maximum and len(steps) < max_steps:
        steps.append(min(maximum, max(steps[-1] + 1, round(steps[-1] * factor))))
    return steps


@dataclass(frozen=True)
class ServerPlan:
    workers: int
    needed: int  # the fewest workers that hold the connections under the fd limit


def plan_server(connections: int, fd_limit: int, workers: int | None,
                max_processes: int) -> ServerPlan:
    needed = workers_for(connections, limit=fd_limit, fill=SERVER_FILL)
    chosen = needed if workers is None else workers
    if chosen < needed:
        raise ValueError(f"{connections} connections need {needed} server workers at nofile "
                         f"{fd_limit}, but {chosen} were asked for: use 'auto' or more")
    if chosen > max_processes:
        raise ValueError(f"{connections} connections need {chosen} server workers at nofile "
                         f"{fd_limit}, over the limit of {max_processes} processes per host: "
                         "lower the scale or raise the open-files limit")
    return ServerPlan(chosen, needed)


@dataclass(frozen=True)
class ClientShare:
    first_user: int
    users: int
    workers: int
    source_addresses_needed: int
    qps: dict[str, int]  # each named rate's share, in proportion to the users


def split_users(total: int, hosts: list[str], weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` users among ``hosts`` in proportion to their weights (default 1),
    exactly: the largest remainders get the leftover users."""
    if not hosts:
        raise ValueError("no client hosts: inventory group 'clients' is empty")
    unknown = set(weights) - set(hosts)
    if unknown:
        raise ValueError(f"weights name hosts that are not clients: {sorted(unknown)}")
    if any(w <= 0 for w in weights.values()):
        raise ValueError("client weights must be > 0")
    weight = [weights.get(h, 1.0) for h in hosts]
    exact = [total * w / sum(weight) for w in weight]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(hosts)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return dict(zip(hosts, counts, strict=True))


def plan_clients(total: int, hosts: list[str], weights: dict[str, float],
                 fd_limit: int, rates: dict[str, int] | None = None) -> dict[str, ClientShare]:
    """Contiguous user ranges, worker counts, and each rate split exactly by users, so
    every client paces its users with the same period."""
    users = split_users(total, hosts, weights)
    by_users = {h: float(n) for h, n in users.items() if n}
    rate_shares = {name: split_users(rate, list(by_users), by_users) if by_users else {}
                   for name, rate in (rates or {}).items()}
    shares = {}
    first = 0
    for host, count in users.items():
        shares[host] = ClientShare(
            first_user=first, users=count, workers=workers_for(count, limit=fd_limit),
            source_addresses_needed=-(-count // PORTS_PER_ADDRESS),
            qps={name: split.get(host, 0) for name, split in rate_shares.items()})
        first += count
    return shares


def _parse_pairs(items: list[str], flag: str) -> dict[str, float]:
    pairs = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            pairs[key] = float(value)
        except ValueError:
            raise UsageError(f"{flag} {item!r}: expected NAME=NUMBER") from None
    return pairs


def _plan_clients(args: argparse.Namespace) -> int:
    try:
        rates = {k: int(v) for k, v in _parse_pairs(args.qps, "--qps").items()}
        plan = plan_clients(args.connections, args.host, _parse_pairs(args.weight, "--weight"),
                            args.fd_limit, rates)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(json.dumps({host: asdict(share) for host, share in plan.items()}, indent=1))
    return 0


def _print_json(make: Callable[[], object]) -> int:
    try:
        plan = make()
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(json.dumps(plan if isinstance(plan, list) else asdict(plan),  # type: ignore[arg-type]
                     indent=1))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("plan", help="size a testbed from its targets (JSON)")
    kinds = parser.add_subparsers(dest="plan_kind", required=True)
    clients = kinds.add_parser("clients", help="users and workers per client host")
    clients.add_argument("--connections", type=flags.count(0), required=True, help="users in all")
    clients.add_argument("--host", action="append", default=[], help="client hosts, in order")
    clients.add_argument("--weight", action="append", default=[], help="HOST=WEIGHT")
    clients.add_argument("--qps", action="append", default=[],
                         help="NAME=QPS: split this rate among the clients by users")
    clients.add_argument("--fd-limit", type=flags.count(1), required=True,
                         help="open-files limit on the client hosts")
    clients.set_defaults(func=_plan_clients)

    targets = kinds.add_parser("targets", help="connections, QPS and packet totals at a scale")
    targets.add_argument("--scale", type=flags.positive, required=True,
                         help="1.0 is the seed: 1M connections, 30k then 60k QPS")
    targets.add_argument("--phase-seconds", type=flags.count(1), required=True)
    targets.add_argument("--shake-rate", type=flags.rate(), default=200.0,
                         help="red packets generated per second")
    targets.add_argument("--send-rate", type=flags.rate(), default=50.0,
                         help="red packets sent per second")
    targets.add_argument("--knee-max-steps", type=flags.count(1), default=KNEE_MAX_STEPS,
                         help=f"the knee search's most steps (default {KNEE_MAX_STEPS})")
    targets.set_defaults(func=lambda args: _print_json(lambda: plan_targets(
        args.scale, args.phase_seconds, args.shake_rate, args.send_rate,
        args.knee_max_steps)))

    knee = kinds.add_parser("knee-steps", help="the knee search's QPS steps (a JSON list)")
    knee.add_argument("--start", type=flags.count(1), required=True, help="first step's QPS")
    knee.add_argument("--factor", type=flags.rate(1, inclusive_minimum=False), default=1.25,
                      help="each step is the last times this (default 1.25)")
    knee.add_argument("--max", dest="maximum", type=flags.count(1), required=True,
                      help="the last step's QPS")
    knee.set_defaults(func=lambda args: _print_json(lambda: knee_steps(
        args.start, args.factor, args.maximum)))

    server = kinds.add_parser("server", help="the server's worker count")
    server.add_argument("--connections", type=flags.count(0), required=True)
    server.add_argument("--fd-limit", type=flags.count(1), required=True)
    server.add_argument("--workers", type=flags.workers, default=None, help="a number or auto")
    server.add_argument("--max-processes", type=flags.count(1), required=True,
                        help="worker processes one host may run")
    server.set_defaults(func=lambda args: _print_json(lambda: plan_server(
        args.connections, args.fd_limit, args.workers, args.max_processes)))
