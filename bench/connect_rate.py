#!/usr/bin/env python3
"""How many connections per second get logged in, from a client node's start until every
one of ``--users`` users is logged in on both sides, with ``--workers`` workers per side?

Each run starts a fresh server node, then a client node with ``--users`` users (its
``--connect-rate`` cap set high, so the ends, not the cap, bound the rate) and times it
from the client's spawn until the server and the client both count every login. Also
prints the busiest whole second, from the logins the server's workers count per second.

    .venv/bin/python bench/connect_rate.py [--runs 3] [--users 20000] [--workers W]
        [--connect-rate 100000] [--json PATH]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil
from common import (
    Bench,
    NodeProcess,
    add_run_arguments,
    check_run_arguments,
    cpu_count_note,
    figure,
    log,
    machine_busy_seconds,
    node_workers,
    print_table,
    run_bench,
)

CPU_PARTS = ("box", "server user", "server system", "client user", "client system")


@dataclass
class Run:
    start_up_seconds: float  # client spawn until its control API says ready
    seconds: float  # client spawn until every login is counted on both sides
    logged_in_at_ready: int  # logins the server counted when the client said ready
    busiest_second: int  # most logins the server counted in one whole second
    connect_errors: int
    cpu_us: dict[str, float]  # µs of CPU per login, by CPU_PARTS


def user_system(workers: Sequence[psutil.Process]) -> tuple[float, float]:
    """The workers' user and system CPU seconds so far."""
    times = [worker.cpu_times() for worker in workers]
    return sum(t.user for t in times), sum(t.system for t in times)


def worker_cpu(node: NodeProcess, since: tuple[float, float] = (0.0, 0.0)
               ) -> tuple[float, float]:
    user, system = user_system(node_workers(node))
    return user - since[0], system - since[1]


def one_run(args: argparse.Namespace) -> Run:
    with Bench(keep=args.keep_run_dir) as bench:
        server = bench.server(args.workers, args.users)
        server_before = worker_cpu(server)
        busy_before = machine_busy_seconds()
        first_second = math.floor(time.time())
        spawned = time.monotonic()
        client = bench.client(server, args.users, args.workers, connect_rate=args.connect_rate)
        ready = time.monotonic() - spawned
        at_ready = server.counters().get("logins", 0)
        bench.wait_logged_in(server, client, args.users, args.users / 500 + 60)
        seconds = time.monotonic() - spawned
        box = machine_busy_seconds() - busy_before
        server_cpu = worker_cpu(server, server_before)
        client_cpu = worker_cpu(client)  # its workers started with the storm
        last_second = math.floor(time.time())
        logins = bench.requests_per_second(f"server-{server.name}-w*.lp", first_second,
                                           last_second + 1, "logins")
        errors = client.counters().get("connect_errors", 0)
    log(f"  {args.users:,} logged in {seconds:.1f} s after the client's spawn "
        f"({args.users / seconds:,.0f}/s); busiest second {max(logins):,}")
    per_login = [part * 1e6 / args.users for part in (box, *server_cpu, *client_cpu)]
    return Run(ready, seconds, at_ready, max(logins), errors, dict(zip(CPU_PARTS, per_login,
                                                                          strict=True)))


def report(args: argparse.Namespace, runs: list[Run]) -> None:
    def after_ready(run: Run) -> float:
        return (args.users - run.logged_in_at_ready) / (run.seconds - run.start_up_seconds)

    print_table(["figure", "value"], [
        ["logged in per second, client ready to last login", figure(list(map(after_ready,
                                                                             runs)), 0)],
        ["logged in per second, spawn to last login", figure([args.users / r.seconds
                                                               for r in runs], 0)],
        ["seconds, spawn to last login", figure([r.seconds for r in runs])],
        ["seconds, spawn to ready (start-up)", figure([r.start_up_seconds for r in runs])],
        ["logged in when the client said ready", figure([r.logged_in_at_ready
                                                          for r in runs], 0)],
        ["logins in the busiest whole second (server)", figure([r.busiest_second
                                                                 for r in runs], 0)],
        ["connect errors (client)", figure([r.connect_errors for r in runs], 0)],
        *([f"µs of CPU per login, {part}{' (all processes)' if part == 'box' else ' (workers)'}",
           figure([r.cpu_us[part] for r in runs])] for part in CPU_PARTS),
    ], [
        f"Median (min-max) over {len(runs)} fresh run(s); {args.users:,} users, "
        f"{args.workers} worker(s) per side, on 127.0.0.1, client --connect-rate "
        f"{args.connect_rate:g}. " + cpu_count_note(),
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--connect-rate", type=float, default=100_000.0,
                        help="the client's cap on new connections per second")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    if args.connect_rate <= 0:
        parser.error("--connect-rate must be > 0")
    check_run_arguments(parser, args, args.users)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench(parse_args(argv), one_run, report)


if __name__ == "__main__":
    raise SystemExit(main())
