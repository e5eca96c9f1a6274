#!/usr/bin/env python3
"""How many µs of CPU does one shake request cost the server and the client?

Each run starts a fresh server node and client node on loopback, logs ``--connections``
users in, measures one window at 0 QPS (the idle cost), then one window at each
``--qps-levels`` rate. A window is ``--window`` whole wall-clock seconds after
``--settle`` seconds at the rate: the CPU (user + sys) of each side's processes over the
window, divided by the requests that side counted in exactly those seconds (each worker
writes one point per second to its metrics file). Prints medians over ``--runs`` runs.

    .venv/bin/python bench/cpu_per_request.py [--runs 3] [--connections 10000]
        [--qps-levels 1000,5000,10000] [--window 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass

import psutil
from common import (
    Bench,
    NodeProcess,
    add_run_arguments,
    check_run_arguments,
    cpu_by_pid,
    cpu_count_note,
    figure,
    log,
    machine_busy_seconds,
    median,
    node_workers,
    print_table,
    process_tree,
    run_bench,
    sleep_until,
)

MAX_WINDOW_SECONDS = 20  # settle + window: one measurement stays short


@dataclass
class Window:
    target_qps: int
    seconds: int
    server_requests: int
    client_requests: int
    timeouts: int
    server_worker_cpu: float
    server_node_cpu: float  # the node process and its helpers, workers excluded
    server_worker_system: float  # the workers' kernel time, part of server_worker_cpu
    client_worker_cpu: float
    client_node_cpu: float
    client_worker_system: float
    other_cpu: float  # everything else on the machine, this script included

    def us_per_request(self, side: str, workers_only: bool) -> float:
        cpu = getattr(self, f"{side}_worker_cpu")
        if not workers_only:
            cpu += getattr(self, f"{side}_node_cpu")
        return self._per_request(side, cpu)

    def kernel_us_per_request(self, side: str) -> float:
        """The side's workers' system time per request: the kernel's part of it."""
        return self._per_request(side, getattr(self, f"{side}_worker_system"))

    def _per_request(self, side: str, cpu: float) -> float:
        requests = getattr(self, f"{side}_requests")
        return cpu * 1e6 / requests if requests else math.inf


def cpu_by_role(tree: list[psutil.Process],
                worker_pids: set[int]) -> tuple[float, float, float]:
    """CPU seconds (user + system) of the workers in ``tree``, of the rest of it (node and
    helpers), and the workers' system (kernel) seconds alone."""
    cpu = cpu_by_pid(tree)
    workers = sum(user + system for pid, (user, system) in cpu.items() if pid in worker_pids)
    rest = sum(user + system for pid, (user, system) in cpu.items() if pid not in worker_pids)
    kernel = sum(system for pid, (_user, system) in cpu.items() if pid in worker_pids)
    return workers, rest, kernel


def measure_window(bench: Bench, server: NodeProcess, client: NodeProcess, qps: int,
                   seconds: int) -> Window:
    """CPU over ``seconds`` whole wall-clock seconds, read right as the seconds turn, and
    the requests counted in those same seconds."""
    start = math.floor(time.time()) + 1
    end = start + seconds
    trees = {"server": process_tree(server.process.pid),
             "client": process_tree(client.process.pid)}
    worker_pids = {p.pid for node in (server, client) for p in node_workers(node)}
    sleep_until(start + 0.003)
    busy0 = machine_busy_seconds()
    before = {side: cpu_by_role(tree, worker_pids) for side, tree in trees.items()}
    sleep_until(end + 0.003)
    busy1 = machine_busy_seconds()
    after = {side: cpu_by_role(tree, worker_pids) for side, tree in trees.items()}
    used = {side: [max(0.0, a - b) for a, b in zip(after[side], before[side], strict=True)]
            for side in trees}
    return Window(
        target_qps=qps, seconds=seconds,
        server_requests=sum(bench.requests_per_second(f"server-{server.name}-w*.lp", start,
                                                      end)),
        client_requests=sum(bench.requests_per_second(f"client-{client.name}-w*.lp", start,
                                                      end)),
        timeouts=sum(bench.requests_per_second(f"client-{client.name}-w*.lp", start, end,
                                               "timeouts")),
        server_worker_cpu=used["server"][0], server_node_cpu=used["server"][1],
        server_worker_system=used["server"][2],
        client_worker_cpu=used["client"][0], client_node_cpu=used["client"][1],
        client_worker_system=used["client"][2],
        other_cpu=busy1 - busy0 - sum(used["server"][:2]) - sum(used["client"][:2]),
    )


def one_run(args: argparse.Namespace) -> list[Window]:
    with Bench(keep=args.keep_run_dir) as bench:
        server = bench.server(args.workers, args.connections)
        client = bench.client(server, args.connections, args.workers)
        took = bench.wait_logged_in(server, client, args.connections, args.connections / 1000 + 60)
        log(f"  {args.connections:,} users logged in after {took:.1f} s")
        if args.shake_rate:
            server.get("/shake", qps=args.shake_rate, total=2**31 - 1)
        time.sleep(args.settle)
        windows = [measure_window(bench, server, client, 0, args.window)]
        for qps in args.qps_levels:
            client.get("/qps", qps=qps)
            time.sleep(args.settle)
            window = measure_window(bench, server, client, qps, args.window)
            log(f"  {qps:>6,} qps: server {window.server_requests / args.window:8,.0f}/s "
                f"{window.us_per_request('server', False):6.1f} µs/req | client "
                f"{window.us_per_request('client', False):6.1f} µs/req | other load "
                f"{window.other_cpu / args.window:.2f} cores")
            windows.append(window)
    return windows


def marginal_us(windows: list[Window], side: str) -> float:
    """Least-squares slope of the side's CPU (s/s) over its requests/s, in µs per request:
    the cost of one more request without the fixed per-second work."""
    xs = [getattr(w, f"{side}_requests") / w.seconds for w in windows]
    ys = [(getattr(w, f"{side}_worker_cpu") + getattr(w, f"{side}_node_cpu")) / w.seconds
          for w in windows]
    if len(set(xs)) < 2:
        return math.nan
    return statistics.linear_regression(xs, ys).slope * 1e6


def report(args: argparse.Namespace, runs: list[list[Window]]) -> None:
    workers = args.workers
    headers = ["QPS target", "server req/s", "server µs/req (workers)",
               "of it kernel", "server µs/req (all)", "client µs/req (workers)",
               "of it kernel", "client µs/req (all)", "client / server", "timeouts",
               "other load, cores"]
    rows = []
    for level, qps in enumerate(args.qps_levels, start=1):
        ws = [run[level] for run in runs]
        rows.append([
            f"{qps:,}",
            figure([w.server_requests / w.seconds for w in ws], 0),
            figure([w.us_per_request("server", True) for w in ws]),
            figure([w.kernel_us_per_request("server") for w in ws]),
            figure([w.us_per_request("server", False) for w in ws]),
            figure([w.us_per_request("client", True) for w in ws]),
            figure([w.kernel_us_per_request("client") for w in ws]),
            figure([w.us_per_request("client", False) for w in ws]),
            figure([w.us_per_request("client", False) / w.us_per_request("server", False)
                    for w in ws], 2),
            figure([w.timeouts for w in ws], 0),
            figure([w.other_cpu / w.seconds for w in ws], 2),
        ])
    if len(args.qps_levels) >= 2:
        slopes = {side: [marginal_us(run[1:], side) for run in runs]
                  for side in ("server", "client")}
        rows.append(["marginal (slope)", "", "", "", figure(slopes["server"]), "", "",
                     figure(slopes["client"]),
                     f"{median(slopes['client']) / median(slopes['server']):.2f}", "", ""])
    print_table(headers, rows)
    idle = [run[0] for run in runs]
    print()
    print_table(["at 0 QPS, ms of CPU per second", "server", "client"], [
        [f"each worker (of {workers})",
         figure([w.server_worker_cpu * 1000 / w.seconds / workers for w in idle]),
         figure([w.client_worker_cpu * 1000 / w.seconds / workers for w in idle])],
        ["node process and helpers",
         figure([w.server_node_cpu * 1000 / w.seconds for w in idle]),
         figure([w.client_node_cpu * 1000 / w.seconds for w in idle])],
    ], [
        f"Median (min-max) over {len(runs)} fresh run(s); {args.connections:,} logged-in "
        f"connections on 127.0.0.1, {workers} worker(s) per side; CPU = user + sys over "
        f"{args.window} s windows after {args.settle:g} s at the rate. 'all' adds the node "
        "process and its helpers to the workers; 'of it kernel' is the workers' system time. "
        "'client / server' is taken within each run.",
        cpu_count_note() + " 'other load' is the CPU the rest of the machine used during the "
        "window (this script included); psutil CPU times tick at 10 ms.",
        "Shakes are answered 'none' (no packet generator) unless --shake-rate is set"
        + (f" (here {args.shake_rate:g} packets/s)." if args.shake_rate else "."),
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--qps-levels", default="1000,5000,10000",
                        help="comma-separated shake rates")
    parser.add_argument("--window", type=int, default=5, help="seconds measured per rate")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds at a new rate before measuring")
    parser.add_argument("--shake-rate", type=float, default=0.0,
                        help="server packet generator rate during the load (0 = off)")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    try:
        args.qps_levels = [int(x) for x in args.qps_levels.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--qps-levels: expected comma-separated integers, got {args.qps_levels!r}")
    if args.window < 1 or not args.qps_levels or min(args.qps_levels) < 1:
        parser.error("--window and every --qps-levels entry must be >= 1")
    if args.window + args.settle > MAX_WINDOW_SECONDS:
        parser.error(f"--window + --settle must stay <= {MAX_WINDOW_SECONDS} s")
    check_run_arguments(parser, args, args.connections)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench(parse_args(argv), one_run, report)


if __name__ == "__main__":
    raise SystemExit(main())
