#!/usr/bin/env python3
"""How long do the nodes' control APIs take to answer ``/status`` while a run loads the box?

Issue 8 asks that ``/status`` answer within 1 s at full load. For every server and client
host of the lab (``inventory/lab``), one small python3 reader runs in the host's network
namespace and GETs its node's ``/status`` on 127.0.0.1 (the server's control port, 8989, or a
client's, 9090) once every ``--interval`` seconds for ``--seconds``, timing each answer. The
readers are spread over the interval, so they measure each node, not a burst of 18 reads at
once. A read that fails, or takes longer than ``--timeout``, counts as failed, with its
reason. It starts nothing else and changes nothing: start it while a phase runs (say phase 2
of ``make seed``), alone or beside ``box_profile.py``.

    .venv/bin/python bench/status_latency.py [--seconds 60] [--interval 1] [--timeout 10]
        [--json PATH]

Prints, per role: hosts, reads, p50, p99 and max of the answer time in ms, the share
answered within 1 s, and the failures. Needs root (``ip netns exec``) and the lab up.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import figure, log, print_table, save_json

from hongbao.lab.netns import existing_namespaces
from hongbao.lab.topology import load_topology

REPO = Path(__file__).resolve().parent.parent

CONTROL_PORTS = {"server": 8989, "clients": 9090}  # the roles' default control ports
TARGET_S = 1.0  # issue 8: /status within 1 s at full load
# Runs in the host's namespace with the system's python3 (as the plays' reads do): every
# interval, at its own offset in it, one GET; one line per read: "ok <seconds>" or
# "failed <seconds> <reason>".
READER = """
import sys, time, urllib.request
url, interval, offset, until, timeout = sys.argv[1], *map(float, sys.argv[2:6])
next_at = time.time() // interval * interval + offset
while next_at < until:
    time.sleep(max(0.0, next_at - time.time()))
    start = time.monotonic()
    try:
        urllib.request.urlopen(url, timeout=timeout).read()
        line = f"ok {time.monotonic() - start:.6f}"
    except Exception as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        line = f"failed {time.monotonic() - start:.6f} {reason}"
    print(line, flush=True)
    next_at += interval
"""


@dataclass
class HostReads:
    host: str
    role: str
    seconds: list[float] = field(default_factory=list)  # answer times of the reads that worked
    failures: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", type=Path, default=REPO / "inventory" / "lab",
                        help="the lab inventory (default inventory/lab)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to read (60)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between two reads of one node (1)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="a read slower than this fails (10 s)")
    parser.add_argument("--json", type=Path, help="save every read's time here")
    args = parser.parse_args(argv)
    if not 0 < args.interval <= args.seconds <= 3600:
        parser.error("need 0 < --interval <= --seconds <= 3600")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    return args


def start_readers(args: argparse.Namespace) -> list[tuple[HostReads, subprocess.Popen[str]]]:
    hosts = [host for host in load_topology(args.inventory).hosts
             if host.group in CONTROL_PORTS]
    if not hosts:
        raise RuntimeError(f"no server or client hosts in {args.inventory}")
    missing = [host.namespace for host in hosts if host.namespace not in existing_namespaces()]
    if missing:
        raise RuntimeError(f"the lab is not up: no namespace {', '.join(missing[:3])}"
                           f"{' ...' if len(missing) > 3 else ''} (hongbao lab up, then a "
                           f"run: make run or make seed)")
    until = time.time() + args.seconds
    readers = []
    for index, host in enumerate(hosts):
        url = f"http://127.0.0.1:{CONTROL_PORTS[host.group]}/status"
        offset = args.interval * index / len(hosts)
        command = ["ip", "netns", "exec", host.namespace, "python3", "-c", READER, url,
                   str(args.interval), str(offset), str(until), str(args.timeout)]
        readers.append((HostReads(host.name, host.group),
                        subprocess.Popen(command, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)))
    return readers


def collect(reads: HostReads, reader: subprocess.Popen[str], deadline: float) -> None:
    """Wait for the reader and parse its lines; a reader that fails is one failure."""
    try:
        out, err = reader.communicate(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        reader.kill()
        out, err = reader.communicate()
        reads.failures.append("the reader did not finish in time")
    else:
        if reader.returncode != 0 and not out:
            reason = err.strip().splitlines()[-1] if err.strip() else f"exit {reader.returncode}"
            reads.failures.append(f"reader failed: {reason}")
    for line in out.splitlines():
        outcome, took, *reason = line.split(" ", 2)
        if outcome == "ok":
            reads.seconds.append(float(took))
        else:
            reads.failures.append(f"after {float(took):.1f} s: {' '.join(reason)}")


def quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def role_row(role: str, hosts: list[HostReads]) -> list[str]:
    times = [took for host in hosts for took in host.seconds]
    failures = sum(len(host.failures) for host in hosts)
    reads = len(times) + failures
    if not times:
        return [role, str(len(hosts)), str(reads), "", "", "", "0%", str(failures)]
    within = sum(took <= TARGET_S for took in times)
    return [role, str(len(hosts)), str(reads), figure([quantile(times, 0.5) * 1000]),
            figure([quantile(times, 0.99) * 1000]), figure([max(times) * 1000]),
            f"{within / reads:.1%}", str(failures)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        readers = start_readers(args)
    except (RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    log(f"reading /status of {len(readers)} nodes every {args.interval:g} s for "
        f"{args.seconds:g} s")
    deadline = time.time() + args.seconds + args.timeout + 10
    for reads, reader in readers:
        collect(reads, reader, deadline)
    by_role: dict[str, list[HostReads]] = {}
    for reads, _reader in readers:
        by_role.setdefault(reads.role, []).append(reads)
    print_table(["role", "hosts", "reads", "p50 ms", "p99 ms", "max ms", "within 1 s",
                 "failed"], [role_row(role, hosts) for role, hosts in by_role.items()])
    for reads, _reader in readers:
        for failure in reads.failures[:3]:
            print(f"- {reads.host}: {failure}")
    save_json(args.json, {"interval_s": args.interval, "seconds": args.seconds,
                          "hosts": [reads for reads, _reader in readers]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
