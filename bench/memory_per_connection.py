#!/usr/bin/env python3
"""How much memory does an idle logged-in connection cost the server and the client, and
what does each process cost before any connection?

Each run starts a fresh server node, reads the RSS and PSS (/proc/PID/smaps_rollup) of
its node process, its helpers (multiprocessing's fork server and resource tracker) and its
workers with 0 connections. A client worker connects as soon as it starts, so the client's
base comes from a probe client node with one user per worker, stopped before the measured
client logs ``--connections`` users in. Both sides are read again ``--settle`` seconds after the
last login, at 0 QPS. Per connection = (the workers' memory at N - their base) / N.

    .venv/bin/python bench/memory_per_connection.py [--runs 3] [--connections 10000]
        [--workers W] [--json PATH]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import psutil
from common import (
    KB,
    Bench,
    NodeProcess,
    add_run_arguments,
    check_run_arguments,
    cpu_count_note,
    figure,
    log,
    node_workers,
    print_table,
    process_tree,
    pss_bytes,
    rss_bytes,
    run_bench,
)

MB = KB * KB


@dataclass
class Memory:
    """RSS and PSS in bytes of one node's processes, by role."""

    node_rss: int
    node_pss: int
    helpers_rss: int
    helpers_pss: int
    workers_rss: int
    workers_pss: int

    @property
    def total_rss(self) -> int:
        return self.node_rss + self.helpers_rss + self.workers_rss

    @property
    def total_pss(self) -> int:
        return self.node_pss + self.helpers_pss + self.workers_pss


def read_memory(node: NodeProcess) -> Memory:
    workers = node_workers(node)
    worker_pids = {w.pid for w in workers}
    root = psutil.Process(node.process.pid)
    helpers = [p for p in process_tree(root.pid)[1:] if p.pid not in worker_pids]
    return Memory(
        node_rss=rss_bytes(root), node_pss=pss_bytes(root),
        helpers_rss=sum(map(rss_bytes, helpers)), helpers_pss=sum(map(pss_bytes, helpers)),
        workers_rss=sum(map(rss_bytes, workers)), workers_pss=sum(map(pss_bytes, workers)),
    )


@dataclass
class Run:
    server_base: Memory
    client_base: Memory
    client_base_users: int
    server_loaded: Memory
    client_loaded: Memory


def one_run(args: argparse.Namespace) -> Run:
    n, workers = args.connections, args.workers
    with Bench(keep=args.keep_run_dir) as bench:
        server = bench.server(workers, n)
        time.sleep(args.settle)
        server_base = read_memory(server)
        probe = bench.client(server, workers, workers, name="probe", first_user=n)
        bench.wait_logged_in(server, probe, workers, 30)
        time.sleep(args.settle)
        client_base = read_memory(probe)
        bench.stop(probe)
        client = bench.client(server, n, workers)
        took = bench.wait_logged_in(server, client, n, n / 1000 + 60)
        log(f"  {n:,} users logged in after {took:.1f} s")
        time.sleep(args.settle)
        return Run(server_base, client_base, workers, read_memory(server),
                   read_memory(client))


def report(args: argparse.Namespace, runs: list[Run]) -> None:
    n, workers = args.connections, args.workers

    def cells(values: list[float], scale: int, digits: int) -> str:
        return figure([v / scale for v in values], digits)

    rows = []
    for kind in ("rss", "pss"):
        def base(run: Run, side: str, role: str, kind: str = kind) -> int:
            return getattr(getattr(run, f"{side}_base"), f"{role}_{kind}")

        def loaded(run: Run, side: str, role: str, kind: str = kind) -> int:
            return getattr(getattr(run, f"{side}_loaded"), f"{role}_{kind}")

        def per_conn(run: Run, side: str) -> float:
            users = n - (run.client_base_users if side == "client" else 0)
            return (loaded(run, side, "workers") - base(run, side, "workers")) / users

        label = kind.upper()
        rows += [
            [f"{label} of the node process, MB",
             *(cells([loaded(r, s, "node") for r in runs], MB, 1) for s in ("server", "client"))],
            [f"{label} of its helpers (fork server, resource tracker), MB",
             *(cells([loaded(r, s, "helpers") for r in runs], MB, 1)
               for s in ("server", "client"))],
            [f"{label} base per worker (0 connections), MB",
             *(cells([base(r, s, "workers") / workers for r in runs], MB, 1)
               for s in ("server", "client"))],
            [f"{label} per connection (workers), KB",
             *(cells([per_conn(r, s) for r in runs], KB, 2) for s in ("server", "client"))],
            [f"{label} all processes at {n:,} connections, MB",
             *(cells([getattr(getattr(r, f"{s}_loaded"), f"total_{kind}") for r in runs], MB, 1)
               for s in ("server", "client"))],
            [f"{label} all processes / connections, KB",
             *(cells([getattr(getattr(r, f"{s}_loaded"), f"total_{kind}") / n for r in runs],
                     KB, 2) for s in ("server", "client"))],
        ]
    print_table(["figure", "server", "client"], rows, [
        f"Median (min-max) over {len(runs)} fresh run(s); {n:,} idle logged-in connections on "
        f"127.0.0.1 at 0 QPS, {workers} worker(s) per side, read {args.settle:g} s after the "
        "last login; KB = 1024 bytes. PSS splits shared pages (the interpreter, libraries) "
        "among the processes sharing them, so PSS sums without counting them twice.",
        "The client's base is a probe client with one user per worker (its per-user table "
        "then grows with the measured client's users, so its per-connection figure includes "
        "it). " + cpu_count_note(),
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds after start-up or the last login before reading memory")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    check_run_arguments(parser, args, args.connections)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench(parse_args(argv), one_run, report)


if __name__ == "__main__":
    raise SystemExit(main())
