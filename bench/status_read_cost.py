#!/usr/bin/env python3
"""What does it cost the box to read every client node's ``/status`` from a play?

A phase's rounds read each node's control API on its own host (it listens on 127.0.0.1
there). This runs one such read of every host in ``--hosts`` (an inventory pattern of the
repo's ansible.cfg, the lab by default) through Ansible, in two ways: the ``uri`` module,
and a python3 one-liner over ``raw`` (what phase 1's rounds use). For each it takes the
box's busy CPU time (/proc/stat) over the read, minus the busy time over as long again
right after it (the run's own background), so nodes holding connections may stay up.

Needs running client nodes (say the lab after ``make run``, or after phase 1 of
``make seed``) and nothing else starting or stopping meanwhile.

    .venv/bin/python bench/status_read_cost.py [--hosts clients] [--port 9090] [--runs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from common import log, median, print_table

REPO = Path(__file__).resolve().parent.parent
ANSIBLE = Path(sys.executable).parent / "ansible"
USER_HZ = 100  # /proc/stat's unit
ONE_LINER = ("python3 -c \"import sys, urllib.request as u; "
             "sys.stdout.write(u.urlopen(sys.argv[1], timeout=10).read().decode())\" {url}")


def busy_seconds() -> float:
    """The box's busy CPU time so far, all cores, in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / USER_HZ


def read_cost(argv: list[str]) -> tuple[float, float]:
    """Wall seconds of one read of every host, and the box's CPU seconds it took."""
    before, start = busy_seconds(), time.monotonic()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    wall, used = time.monotonic() - start, busy_seconds() - before
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).strip().splitlines()
        raise RuntimeError(f"{argv[3]} read failed (exit {done.returncode}): "
                           f"{lines[-1] if lines else 'no output'}")
    background = busy_seconds()
    time.sleep(wall)
    return wall, used - (busy_seconds() - background)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="clients", help="inventory pattern (default clients)")
    parser.add_argument("--port", type=int, default=9090, help="their control port (9090)")
    parser.add_argument("--runs", type=int, default=3, help="reads of each kind (3)")
    args = parser.parse_args(argv)
    if args.runs < 1 or not 0 < args.port < 65536:
        parser.error("--runs must be >= 1 and --port a TCP port")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = f"http://127.0.0.1:{args.port}/status"
    kinds = {
        "uri module": [str(ANSIBLE), args.hosts, "-m", "ansible.builtin.uri", "-a", f"url={url}"],
        "raw python3 -c": [str(ANSIBLE), args.hosts, "-m", "ansible.builtin.raw", "-a",
                           ONE_LINER.format(url=url)],
    }
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    try:
        for run in range(args.runs):
            for kind, command in kinds.items():
                results[kind].append(read_cost(command))
                wall, cpu = results[kind][-1]
                log(f"run {run + 1}, {kind}: {wall:.1f} s, {cpu:.1f} s of CPU")
    except RuntimeError as error:
        print(f"status_read_cost.py: {error}", file=sys.stderr)
        return 1
    rows = [[kind, f"{median([w for w, _ in runs]):.1f}", f"{median([c for _, c in runs]):.1f}",
             " / ".join(f"{c:.1f}" for _, c in runs)] for kind, runs in results.items()]
    print_table(["read of every host", "wall s (median)", "box CPU s (median)", "each run"],
                rows, [f"hosts: {args.hosts}; CPU is the box's busy time over the read minus "
                       "the same span right after it"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
