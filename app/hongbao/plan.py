"""Sizing a testbed from its targets: who holds which users, and how many workers.

``hongbao plan clients`` prints JSON for Ansible: each client's first user, user count
and worker count, so the roles never compute ranges in Jinja.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

from hongbao.capacity import workers_for

PORTS_PER_ADDRESS = 51000  # the default --source-ports 10000-60999


@dataclass(frozen=True)
class ClientShare:
    first_user: int
    users: int
    workers: int
    source_addresses_needed: int


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
                 fd_limit: int) -> dict[str, ClientShare]:
    shares = {}
    first = 0
    for host, users in split_users(total, hosts, weights).items():
        shares[host] = ClientShare(
            first_user=first, users=users, workers=workers_for(users, limit=fd_limit),
            source_addresses_needed=-(-users // PORTS_PER_ADDRESS))
        first += users
    return shares


def _parse_weights(items: list[str]) -> dict[str, float]:
    weights = {}
    for item in items:
        host, _, value = item.partition("=")
        try:
            weights[host] = float(value)
        except ValueError:
            raise SystemExit(f"--weight {item!r}: expected HOST=NUMBER") from None
    return weights


def _plan_clients(args: argparse.Namespace) -> int:
    try:
        plan = plan_clients(args.connections, args.host, _parse_weights(args.weight),
                            args.fd_limit)
    except ValueError as error:
        raise SystemExit(f"hongbao plan clients: {error}") from None
    print(json.dumps({host: asdict(share) for host, share in plan.items()}, indent=1))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("plan", help="size a testbed from its targets (JSON)")
    kinds = parser.add_subparsers(dest="plan_kind", required=True)
    clients = kinds.add_parser("clients", help="users and workers per client host")
    clients.add_argument("--connections", type=int, required=True, help="users in all")
    clients.add_argument("--host", action="append", default=[], help="client hosts, in order")
    clients.add_argument("--weight", action="append", default=[], help="HOST=WEIGHT")
    clients.add_argument("--fd-limit", type=int, required=True,
                         help="open-files limit on the client hosts")
    clients.set_defaults(func=_plan_clients)
