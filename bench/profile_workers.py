#!/usr/bin/env python3
"""Where does a server worker's and a client worker's CPU time go at a given load?

Starts a server node and a client node on loopback, logs ``--connections`` users in,
sets ``--qps``, waits ``--settle`` seconds, then runs ``py-spy record --format raw`` on
the first worker of each side for ``--seconds`` and prints the functions with the most
samples: self (the leaf frame) and inclusive (anywhere on the stack). Samples that wait in
epoll (the loop with nothing to do) are left out of the percentages.

py-spy is not a project dependency: ``.venv/bin/pip install py-spy``.

    .venv/bin/python bench/profile_workers.py [--connections 10000] [--qps 10000]
        [--seconds 15] [--no-native] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common import (
    Bench,
    add_run_arguments,
    check_run_arguments,
    log,
    node_workers,
    print_table,
    run_bench,
)

IDLE_LEAVES = ("epoll_pwait (libc.so.6)", "epoll_wait (libc.so.6)")  # the loop waiting
INCLUSIVE_CUTOFF = 95.0  # hide frames in at least this % of samples (start-up, loop.run)
TOP = 15


@dataclass
class Profile:
    side: str
    raw: str
    samples: int
    idle_samples: int
    self_pct: list[tuple[str, float]]
    total_pct: list[tuple[str, float]]


def short_frame(frame: str) -> str:
    """'data_received (hongbao/server/connection.py:27)' -> 'data_received (connection.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({Path(path).name})" if path else name


def summarise(side: str, path: Path) -> Profile:
    """Self and inclusive shares of the busy samples per function, from py-spy raw output
    (one 'frame;frame;... count' line per distinct stack)."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [short_frame(f) for f in stack.split(";")
                  if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        count = int(count_text)
        samples += count
        self_samples[frames[-1]] += count
        for name in set(frames):
            total_samples[name] += count
    idle = sum(self_samples.pop(name, 0) for name in IDLE_LEAVES)
    for name in IDLE_LEAVES:
        total_samples.pop(name, None)
    busy = max(samples - idle, 1)

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        rows = [(name, round(100 * count / busy, 1)) for name, count in counter.most_common()]
        return [row for row in rows if row[1] < INCLUSIVE_CUTOFF][:TOP]

    return Profile(side, str(path), samples, idle, shares(self_samples), shares(total_samples))


def py_spy() -> str:
    found = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                        f"{os.environ.get('PATH', '')}")
    if found is None:
        raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy")
    return found


def one_run(args: argparse.Namespace) -> list[Profile]:
    spy = py_spy()
    with Bench(keep=args.keep_run_dir) as bench:
        out = args.out or bench.run_dir / "profile"
        out.mkdir(parents=True, exist_ok=True)
        server = bench.server(args.workers, args.connections)
        client = bench.client(server, args.connections, args.workers)
        bench.wait_logged_in(server, client, args.connections, args.connections / 1000 + 60)
        client.get("/qps", qps=args.qps)
        time.sleep(args.settle)
        pids = {side: node_workers(node)[0].pid for side, node in (("server", server),
                                                                      ("client", client))}
        profiles = record_workers(spy, pids, out, f"{args.qps}qps", args.seconds, args.native)
        log(f"  raw stacks in {out}")
    return profiles


def record_workers(spy: str, pids: dict[str, int], out: Path, label: str, seconds: int,
                   native: bool, rate: int = 250) -> list[Profile]:
    """py-spy on each ``side -> pid`` at once for ``seconds``; their summaries.

    With ``native`` py-spy stops the worker for each sample, and a worker starved of CPU
    stops late, so py-spy falls behind and takes ``seconds x rate`` samples over longer:
    it gets up to four times ``seconds``."""
    spies = {}
    for side, pid in pids.items():
        path = out / f"{side}-{label}.txt"
        spies[side] = path, subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
             "--format", "raw", "--output", str(path),
             # --native (uvloop's C code, libc) pauses the worker for each sample
             "--native" if native else "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    profiles = []
    for side, (path, process) in spies.items():
        try:
            _, err = process.communicate(timeout=4 * seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if process.returncode != 0 or not path.exists():
            raise RuntimeError(f"py-spy on the {side} worker failed (exit {process.returncode}): "
                               f"{err.decode(errors='replace').strip()}")
        profiles.append(summarise(side, path))
    return profiles


def report(args: argparse.Namespace, runs: list[list[Profile]]) -> None:
    for profile in runs[-1]:
        print_profile(profile, f"{args.qps:,} QPS, {args.connections:,} connections")


def print_profile(profile: Profile, where: str) -> None:
    print(f"\n{profile.side} worker at {where}: {profile.samples} samples, "
          f"{profile.idle_samples} waiting in epoll (left out; % are of the rest); raw "
          f"stacks: {profile.raw}\n")
    width = max(len(profile.self_pct), len(profile.total_pct))
    rows = [[*(profile.self_pct[i] if i < len(profile.self_pct) else ("", "")),
             *(profile.total_pct[i] if i < len(profile.total_pct) else ("", ""))]
            for i in range(width)]
    print_table(["self: leaf frame", "%", "inclusive: frame anywhere on the stack", "%"],
                [[str(cell) for cell in row] for row in rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--qps", type=int, default=10_000, help="shake rate while profiling")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds at the rate before profiling")
    parser.add_argument("--seconds", type=int, default=15, help="seconds py-spy records")
    parser.add_argument("--native", action=argparse.BooleanOptionalAction, default=True,
                        help="C frames too (uvloop, libc); pauses the workers per sample")
    parser.add_argument("--out", type=Path,
                        help="where the raw stacks go (default: the run directory, kept)")
    add_run_arguments(parser)
    parser.set_defaults(runs=1)
    args = parser.parse_args(argv)
    if args.qps < 1 or args.seconds < 1:
        parser.error("--qps and --seconds must be >= 1")
    check_run_arguments(parser, args, args.connections)
    if args.out is None:
        args.keep_run_dir = True
    return args


def main(argv: list[str] | None = None) -> int:
    return run_bench(parse_args(argv), one_run, report)


if __name__ == "__main__":
    raise SystemExit(main())
