"""Sizing a testbed from its targets: who holds which users, and how many workers.

``hongbao plan clients`` prints JSON for Ansible: each client's first user, user count
and worker count, so the roles never compute ranges in Jinja.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

from hongbao import flags
from hongbao.capacity import workers_for
from hongbao.flags import UsageError

PORTS_PER_ADDRESS = 51000  # the default --source-ports 10000-60999


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
