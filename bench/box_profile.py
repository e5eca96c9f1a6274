#!/usr/bin/env python3
"""Where does the whole box's CPU go during a live run, say a knee step of ``make seed``?

Attaches to what runs now (it starts nothing): for ``--seconds`` it takes the box's CPU
split (/proc/stat: user, system, softirq, idle...) and, per group of processes (server
workers, client workers, the nodes, InfluxDB, Ansible, sshd, kernel threads), their CPU,
wake-ups (voluntary context switches), preemptions and RSS. Workers are told apart by
their process titles (``hongbao server w12 run=RUN``). With ``--qps`` it also gives the
shakes handled per worker wake-up. Then, unless ``--no-py-spy``, it records one server
worker and one client worker of the run with py-spy (``--native``) for as long, after the
box sample so the profiler's pauses stay out of it. Each group's CPU is split into user and
system time: on a saturated box the kernel's share says how much a user-space cut can win.

``--native`` stops the worker for each sample. One that sleeps in epoll stops at once, one
that waits for a core stops only when it gets one, so on a saturated box the samples lean
to the idle ones and py-spy falls behind: read the shares of the busy samples only.
``--no-native`` does not stop the worker, but it sees Python frames only: the loop's C code
and its waits all land on ``Runner.run``.

    .venv/bin/python bench/box_profile.py --run-id RUN [--seconds 15] [--qps 1875]
        [--out DIR] [--no-py-spy] [--no-native] [--spy-rate 20]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil
from common import log, print_table
from profile_workers import print_profile, py_spy, record_workers

WORKER_TITLE = re.compile(r"^hongbao (?P<side>server|client) w(?P<index>\d+) run=(?P<run>\S+)")
CPU_FIELDS = ("user", "nice", "system", "irq", "softirq", "iowait", "steal", "idle")


@dataclass
class Sample:
    group: str
    user: float  # seconds of CPU in user space
    system: float  # and in the kernel, on the process's behalf
    wakeups: int  # voluntary context switches
    preempted: int  # involuntary ones
    rss: int


@dataclass
class Group:
    processes: int = 0
    user: float = 0.0
    system: float = 0.0
    wakeups: int = 0
    preempted: int = 0
    rss: int = 0

    @property
    def cpu(self) -> float:
        return self.user + self.system


def group_of(process: psutil.Process, run_id: str) -> str | None:
    """The group a process counts in, or None for one that is gone."""
    try:
        cmdline = process.cmdline()
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if process.pid == 1:  # in this sandbox the VM's init, busy in the kernel at 1M connections
        return f"pid 1 ({name})"
    title = " ".join(cmdline)
    worker = WORKER_TITLE.match(title)
    if worker:
        other = "" if worker["run"] == run_id else " (other run)"
        return f"{worker['side']} workers{other}"
    if not cmdline:
        return "kernel threads"
    if name in ("influxd", "sshd", "chronyd"):  # before the title: their paths hold "hongbao"
        return name
    words = [Path(word).name for word in cmdline]
    for at, word in enumerate(words[:-1]):
        if word in ("hongbao", "hongbao.cli") and words[at + 1] in ("server", "client"):
            run = words[words.index("--run-id") + 1] if "--run-id" in words[:-1] else run_id
            return f"{words[at + 1]} nodes{'' if run == run_id else ' (other run)'}"
    if "hongbao" in title:
        return "other hongbao"
    if "ansible" in title:
        return "ansible"
    return "other"


def take(run_id: str) -> dict[int, Sample]:
    """Every process's group and counters now, by pid."""
    samples = {}
    for process in psutil.process_iter():
        group = group_of(process, run_id)
        if group is None:
            continue
        try:
            with process.oneshot():
                times = process.cpu_times()
                switches = process.num_ctx_switches()
                rss = process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        samples[process.pid] = Sample(group, times.user, times.system, switches.voluntary,
                                      switches.involuntary, rss)
    return samples


def box_cpu() -> dict[str, float]:
    times = psutil.cpu_times()
    return {name: getattr(times, name, 0.0) for name in CPU_FIELDS}


def measure(run_id: str, seconds: float) -> tuple[dict[str, float], dict[str, Group], float]:
    """The box's CPU split and each group's deltas over ``seconds``, counting only the
    processes alive at both ends (one started or gone in between has no delta)."""
    box_before, before, start = box_cpu(), take(run_id), time.monotonic()
    time.sleep(seconds)
    box_after, after, elapsed = box_cpu(), take(run_id), time.monotonic() - start
    groups: dict[str, Group] = defaultdict(Group)
    for pid, now in after.items():
        then = before.get(pid)
        if then is None or then.group != now.group:
            continue
        group = groups[now.group]
        group.processes += 1
        group.user += now.user - then.user
        group.system += now.system - then.system
        group.wakeups += now.wakeups - then.wakeups
        group.preempted += now.preempted - then.preempted
        group.rss += now.rss
    box = {name: box_after[name] - box_before[name] for name in CPU_FIELDS}
    return box, groups, elapsed


def group_rows(groups: dict[str, Group], elapsed: float, qps: int | None) -> list[list[str]]:
    rows = []
    for name, group in sorted(groups.items(), key=lambda item: item[1].cpu, reverse=True):
        wakeups = group.wakeups / elapsed
        own_workers = name.endswith(" workers")
        per_wakeup = f"{qps / wakeups:.2f}" if qps and wakeups and own_workers else ""
        rows.append([name, str(group.processes),
                     f"{100 * group.cpu / elapsed:.1f}",
                     f"{100 * group.user / elapsed:.1f}", f"{100 * group.system / elapsed:.1f}",
                     f"{wakeups:,.0f}", f"{group.preempted / elapsed:,.0f}", per_wakeup,
                     f"{group.rss / 2**20:,.0f}"])
    return rows


def pick_workers(run_id: str) -> dict[str, int]:
    """The lowest-numbered server and client worker of the run."""
    found: dict[str, tuple[int, int]] = {}
    for process in psutil.process_iter(["cmdline"]):
        match = WORKER_TITLE.match(" ".join(process.info["cmdline"] or []))
        if match and match["run"] == run_id:
            side, index = match["side"], int(match["index"])
            if side not in found or index < found[side][0]:
                found[side] = (index, process.pid)
    return {side: pid for side, (_, pid) in sorted(found.items(), reverse=True)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-id", required=True, help="the run whose workers to watch")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of each sample")
    parser.add_argument("--qps", type=int, help="the shakes/s in all, for shakes per wake-up")
    parser.add_argument("--py-spy", action=argparse.BooleanOptionalAction, default=True,
                        help="then profile one server and one client worker")
    parser.add_argument("--native", action=argparse.BooleanOptionalAction, default=True,
                        help="py-spy --native: C frames too, but it stops the worker per sample")
    parser.add_argument("--spy-rate", type=int, default=20,
                        help="py-spy samples a second (a starved worker stops late: keep it low)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/box-profile"),
                        help="where py-spy's raw stacks go")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.spy_rate < 1 or (args.qps is not None and args.qps < 1):
        parser.error("--seconds, --spy-rate and --qps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not pick_workers(args.run_id):
        print(f"box_profile.py: no worker of run {args.run_id} is running", file=sys.stderr)
        return 1
    log(f"sampling the box for {args.seconds} s")
    box, groups, elapsed = measure(args.run_id, args.seconds)
    total = sum(box.values())
    print(f"\nthe box over {elapsed:.1f} s, {psutil.cpu_count()} cores "
          f"(% of all cores): " + ", ".join(f"{name} {100 * value / total:.1f}%"
                                           for name, value in box.items() if value) + "\n")
    print_table(["group", "processes", "CPU % of a core", "user", "system", "wake-ups/s",
                 "preempted/s", "shakes per wake-up", "RSS MB"],
                group_rows(groups, elapsed, args.qps))
    if args.py_spy:
        args.out.mkdir(parents=True, exist_ok=True)
        mode = "--native" if args.native else "--nonblocking"
        log(f"py-spy {mode} on one server and one client worker for {args.seconds} s, "
            f"{args.spy_rate} samples/s")
        for profile in record_workers(py_spy(), pick_workers(args.run_id), args.out,
                                      args.run_id, args.seconds, args.native, args.spy_rate):
            print_profile(profile, f"run {args.run_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
