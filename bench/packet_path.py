#!/usr/bin/env python3
"""What does one request/response round trip cost the box, kernel included, between two
lab namespaces, and how do the process count and the send steps change it?

At the seed's rates most of the box's CPU is the kernel's network path (system + softirq).
This measures that path with no hongbao code in it: small uvloop echo servers (on one
SO_REUSEPORT port) in one namespace, paced clients in another holding ``--connections``
connections in all and sending 16-byte frames in even steps, every client on one grid of
steps (or, with ``--spread``, each at its own offset). A variant is a path, a process count
per side and a step rate; each is loaded in turn at each rate, round after round, so all
see the same machine. A window's whole-machine CPU (user, system, softirq) is divided by
the round trips answered in it; the table gives medians over the rounds.

Paths:
  bridge-nf   veth -> bridge -> veth, bridged frames passed to iptables (the lab, on a
              machine where br_netfilter is loaded and bridge-nf-call-iptables is 1)
  bridge      the same bridge with bridge-nf-call-iptables 0
  veth        one veth pair straight between the two namespaces

    .venv/bin/python bench/packet_path.py [--qps-levels 2000,20000] [--connections 10000]
        [--processes 1] [--send-steps 100] [--spread] [--paths veth,bridge-nf,bridge]
        [--window 8] [--rounds 3] [--json PATH]

Needs root. It makes namespaces hbpp-*, a bridge hbpp-br0 and veths hbpp-*, and removes
them (and puts the machine's bridge-nf-call-iptables back) when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common import (
    log,
    median,
    print_table,
    save_json,
    sleep_until,
    stopped_on_signals,
    whole_numbers,
)

from hongbao.pacing import GOLDEN_RATIO_FRACTION, split_count

PREFIX = "hbpp-"
BRIDGE = PREFIX + "br0"
PORT = 9100
FRAME = b"0123456789abcdef"
BR_NF_SYSCTL = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
CPU_FIELDS = ("user", "nice", "system", "irq", "softirq")


# ---------------------------------------------------------------- the two ends


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def serve(address: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, address, PORT, backlog=4096, reuse_port=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class Counting(asyncio.Protocol):
    answered = 0

    def data_received(self, data: bytes) -> None:
        Counting.answered += len(data) // len(FRAME)


async def load(server: str, connections: int, qps: int, seconds: float, steps: int,
               offset: float) -> None:
    """Connect, say ``ready``, then send ``qps`` frames a second in ``steps`` even steps a
    second for ``seconds``, each step ``offset`` of a step after the grid of whole steps;
    each second, print ``<unix second> <frames answered in it>``."""
    loop = asyncio.get_running_loop()
    transports = [(await loop.create_connection(Counting, server, PORT))[0]
                  for _ in range(connections)]
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "go", once every client is ready
    start = time.time()
    second = int(start)
    answered_before = sent = cursor = 0
    while (now := time.time()) < start + seconds:
        for _ in range(int((now - start) * qps) - sent):
            transports[cursor].write(FRAME)
            cursor = (cursor + 1) % connections
            sent += 1
        if int(now) > second:
            print(second, Counting.answered - answered_before, flush=True)
            answered_before = Counting.answered
            second = int(now)
        await asyncio.sleep((math.floor(now * steps - offset) + 1 + offset) / steps - time.time())


# ---------------------------------------------------------------- namespaces


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class PacketPath:
    name: str
    client_ns: str
    server_ns: str
    client_ip: str
    server_ip: str
    br_nf: int | None  # the bridge's bridge-nf-call-iptables, None without a bridge


def make_paths(subnet: str) -> list[PacketPath]:
    bridge = PacketPath("bridge", PREFIX + "bc", PREFIX + "bs", f"{subnet}.1", f"{subnet}.2", 0)
    veth = PacketPath("veth", PREFIX + "vc", PREFIX + "vs", f"{subnet}.5", f"{subnet}.6", None)
    paths = [veth, bridge]
    if BR_NF_SYSCTL.exists():
        paths.insert(1, dataclasses.replace(bridge, name="bridge-nf", br_nf=1))
    return paths


def build(paths: list[PacketPath]) -> None:
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("link", "set", BRIDGE, "up")
    built: set[str] = set()
    for path in paths:
        if path.client_ns in built:
            continue
        built.add(path.client_ns)
        for ns in (path.client_ns, path.server_ns):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        if path.br_nf is None:
            ip("link", "add", "eth0", "netns", path.client_ns, "type", "veth",
               "peer", "eth0", "netns", path.server_ns)
        else:
            for ns in (path.client_ns, path.server_ns):
                ip("link", "add", ns, "type", "veth", "peer", "eth0", "netns", ns)
                ip("link", "set", ns, "master", BRIDGE, "up")
        for ns, address in ((path.client_ns, path.client_ip), (path.server_ns, path.server_ip)):
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                            "net.ipv4.ip_local_port_range=10000 65000",
                            "net.ipv4.tcp_tw_reuse=1"],  # the last variant's ports are free
                           check=True)


def tear_down(paths: list[PacketPath]) -> None:
    for ns in sorted({n for p in paths for n in (p.client_ns, p.server_ns)}):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", ns], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


@contextlib.contextmanager
def bridge_nf_restored() -> Iterator[None]:
    saved = BR_NF_SYSCTL.read_text() if BR_NF_SYSCTL.exists() else None
    try:
        yield
    finally:
        if saved is not None:
            BR_NF_SYSCTL.write_text(saved)


# ---------------------------------------------------------------- measuring


def machine_cpu() -> dict[str, float]:
    """Seconds of CPU by kind since boot (the first line of /proc/stat)."""
    values = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    tick = os.sysconf("SC_CLK_TCK")
    return {kind: int(value) / tick for kind, value in zip(
        ("user", "nice", "system", "idle", "iowait", "irq", "softirq"), values, strict=False)}


@dataclass(frozen=True)
class Variant:
    path: PacketPath
    processes: int  # echo servers (on one SO_REUSEPORT port) and clients, each
    steps: int  # the clients' send steps a second
    spread: bool  # each client's steps at its own offset, not all on one grid

    @property
    def label(self) -> str:
        spread = ", spread" if self.spread else ""
        return f"{self.path.name}, {self.processes} procs, {self.steps} steps/s{spread}"


@dataclass
class Window:
    variant: str
    qps: int
    answered: int
    cpu: dict[str, float]  # seconds of the whole machine's CPU in the window, by kind

    def us_per_round_trip(self, kinds: tuple[str, ...] = CPU_FIELDS) -> float:
        return sum(self.cpu[k] for k in kinds) / max(1, self.answered) * 1e6


def start_roles(namespace: str, role_args: list[list[str]]) -> list[subprocess.Popen[str]]:
    """Start one process per argument list in the namespace; return once all are ready."""
    processes = [subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, __file__,
                                   *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
                 for args in role_args]
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            for other in processes:
                other.kill()
            raise SystemExit(f"packet_path: a process in {namespace} did not start "
                             f"({process.args})")
    return processes


def measure(variant: Variant, qps: int, args: argparse.Namespace) -> Window:
    """Load one variant at ``qps`` for settle + window seconds; the window's CPU per answer."""
    path = variant.path
    if path.br_nf is not None and BR_NF_SYSCTL.exists():
        BR_NF_SYSCTL.write_text(f"{path.br_nf}\n")
    servers = start_roles(path.server_ns, [["--role", "server", "--address", path.server_ip]]
                          * variant.processes)
    clients: list[subprocess.Popen[str]] = []
    try:
        clients = start_roles(path.client_ns, [
            ["--role", "client", "--address", path.server_ip, "--connections", str(connections),
             "--qps", str(share), "--steps", str(variant.steps),
             "--offset", str((index * GOLDEN_RATIO_FRACTION) % 1 if variant.spread else 0),
             "--seconds", str(args.settle + args.window + 1)]
            for index, (connections, share) in enumerate(zip(
                split_count(args.connections, variant.processes),
                split_count(qps, variant.processes), strict=True))])
        for client in clients:
            assert client.stdin is not None
            client.stdin.write("go\n")
            client.stdin.flush()
        first = int(time.time()) + args.settle
        sleep_until(first)
        before = machine_cpu()
        sleep_until(first + args.window)
        after = machine_cpu()
        outputs = [client.communicate(timeout=30)[0] for client in clients]
    finally:
        for process in (*clients, *servers):
            process.kill()
            process.wait()
    answered = 0
    for output in outputs:
        answers = dict(tuple(map(int, line.split())) for line in output.splitlines() if line)
        answered += sum(answers.get(s, 0) for s in range(first, first + args.window))
    cpu = {kind: after[kind] - before[kind] for kind in CPU_FIELDS}
    window = Window(variant.label, qps, answered, cpu)
    log(f"{variant.label:>32} {qps:>6} QPS: {answered / args.window:>8.0f} answered/s, "
        f"{window.us_per_round_trip():.1f} µs CPU per round trip "
        f"(system+softirq {window.us_per_round_trip(('system', 'softirq')):.1f})")
    return window


def bench(args: argparse.Namespace) -> None:
    paths = make_paths(args.subnet)
    variants = [Variant(path, processes, steps, spread)
                for path in paths if path.name in args.paths
                for processes in args.processes for steps in args.steps_list
                for spread in ((False, True) if args.spread else (False,))]
    levels = args.qps_levels
    windows: list[Window] = []
    with stopped_on_signals(), bridge_nf_restored():
        tear_down(paths)  # left over from a run that was killed
        try:
            build(paths)
            for round_ in range(args.rounds):
                log(f"round {round_ + 1} of {args.rounds}")
                for qps in levels:
                    windows.extend(measure(variant, qps, args) for variant in variants)
        finally:
            tear_down(paths)
    rows = []
    for qps in levels:
        for variant in variants:
            mine = [w for w in windows if w.variant == variant.label and w.qps == qps]
            rows.append([variant.label, f"{qps:,}",
                         f"{median([w.answered / args.window for w in mine]):,.0f}",
                         *(f"{median([w.us_per_round_trip(kinds) for w in mine]):.1f}"
                           for kinds in (CPU_FIELDS, ("system", "softirq"), ("user", "nice")))])
    print_table(["variant", "qps", "answered/s", "µs CPU per round trip", "system+softirq",
                 "user"], rows, [f"medians of {args.rounds} windows of {args.window} s, "
                                 f"{args.connections:,} connections"])
    save_json(args.json, {"args": {k: v for k, v in vars(args).items() if k != "json"},
                          "windows": [vars(w) for w in windows]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--role", choices=("bench", "server", "client"), default="bench",
                        help=argparse.SUPPRESS)  # the two ends run this script in a namespace
    parser.add_argument("--address", default="", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--qps", type=int, default=0, help=argparse.SUPPRESS)  # a client's
    parser.add_argument("--steps", type=int, default=100, help=argparse.SUPPRESS)  # a client's
    parser.add_argument("--offset", type=float, default=0, help=argparse.SUPPRESS)  # a client's
    parser.add_argument("--qps-levels", type=whole_numbers, default=[2000, 20000],
                        help="round trips a second, comma-separated (default 2000,20000)")
    parser.add_argument("--processes", type=whole_numbers, default=[1],
                        help="processes on each side, comma-separated (default 1)")
    parser.add_argument("--send-steps", dest="steps_list", type=whole_numbers, default=[100],
                        help="the clients' send steps a second, comma-separated (default 100)")
    parser.add_argument("--spread", action="store_true",
                        help="also measure each variant with the clients' steps spread over "
                             "the step (by the golden ratio), not all on one grid")
    parser.add_argument("--paths", type=lambda t: t.split(","),
                        default=["veth", "bridge-nf", "bridge"],
                        help="paths to measure, comma-separated (default all three)")
    parser.add_argument("--connections", type=int, default=10000,
                        help="connections the client holds (one process: under 20,000)")
    parser.add_argument("--settle", type=int, default=2, help="seconds before each window")
    parser.add_argument("--window", type=int, default=8, help="seconds measured per window")
    parser.add_argument("--rounds", type=int, default=3, help="windows per path and rate")
    parser.add_argument("--subnet", default="198.19.254",
                        help="the /24 the namespaces use (only between themselves)")
    parser.add_argument("--json", type=Path, default=None, help="also write the windows here")
    args = parser.parse_args()
    if args.role != "bench":
        import uvloop

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        coroutine = (serve(args.address) if args.role == "server" else
                     load(args.address, args.connections, args.qps, args.seconds, args.steps,
                          args.offset))
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(coroutine)
        return
    if os.geteuid() != 0:
        raise SystemExit("packet_path: needs root (it makes namespaces and a bridge)")
    bench(args)


if __name__ == "__main__":
    main()
