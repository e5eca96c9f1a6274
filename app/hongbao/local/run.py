"""``hongbao local-run``: phases 1 -> 2 -> 3 at small scale with a server and client
nodes as real processes on loopback, per-second counters, a summary and the balance."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hongbao import flags
from hongbao.local.node_process import NodeProcess, free_port, start_node
from hongbao.local.phases import mark_phase
from hongbao.money import ledger_files, reconcile
from hongbao.pacing import split_count
from hongbao.report.console import print_summary, report_console
from hongbao.report.series import build_series
from hongbao.report.sources import histograms_from_run_dir, points_from_run_dir, run_metadata
from hongbao.runs import resolve_run_dir, resolve_run_id

log = logging.getLogger(__name__)

TICK_S = 1.0  # nodes take their workers' counters once a second
# After the load stops, the counters agree once the last answers are in and ticked; on a
# busy box that can take seconds. Past this they are reported as they are.
SETTLE_TIMEOUT_S = 15.0


def counters_agree(snapshot: dict[str, Any]) -> bool:
    """Every shake the server took was answered, every claim paid is the client's."""
    server, client = snapshot["server"], snapshot["client"]
    return (server["requests"] == client["responses"]
            and server["claimed_amount"] == client["claimed_amount"])


@dataclass
class LocalRunPlan:
    run_id: str
    run_dir: Path
    users: int = 4000
    clients: int = 2
    server_workers: int = 2
    phase_seconds: int = 10
    phase2_qps: int = 1000
    phase3_qps: int = 2000
    shake_rate: float = 200.0
    send_rate: float = 50.0
    connect_rate: float = 2000.0
    connect_timeout: float = 120.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LocalRunPlan:
        run_id = resolve_run_id(args.run_id)
        return cls(
            run_id=run_id, run_dir=resolve_run_dir(args.run_dir, run_id), users=args.users,
            clients=args.clients, server_workers=args.server_workers,
            phase_seconds=args.phase_seconds, phase2_qps=args.phase2_qps,
            phase3_qps=args.phase3_qps, shake_rate=args.shake_rate, send_rate=args.send_rate,
            connect_rate=args.connect_rate,
        )


def add_local_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id")
    parser.add_argument("--run-dir")
    parser.add_argument("--users", type=flags.count(1), default=4000)
    parser.add_argument("--clients", type=flags.count(1), default=2, help="client nodes")
    parser.add_argument("--server-workers", type=flags.count(1), default=2)
    parser.add_argument("--phase-seconds", type=flags.count(1), default=10)
    parser.add_argument("--phase2-qps", type=flags.count(0), default=1000)
    parser.add_argument("--phase3-qps", type=flags.count(0), default=2000)
    parser.add_argument("--shake-rate", type=flags.rate(), default=200.0,
                        help="packets generated/s")
    parser.add_argument("--send-rate", type=flags.rate(), default=50.0, help="packets sent/s")
    parser.add_argument("--connect-rate", type=flags.positive, default=2000.0,
                        help="per client node")


@dataclass
class LocalRun:
    plan: LocalRunPlan
    nodes: list[NodeProcess] = field(default_factory=list)

    @property
    def server(self) -> NodeProcess:
        return self.nodes[0]

    @property
    def clients(self) -> list[NodeProcess]:
        return self.nodes[1:]

    def start_node(self, name: str, args: list[str]) -> NodeProcess:
        node = start_node(self.plan.run_dir, self.plan.run_id, name, args)
        self.nodes.append(node)
        return node

    def start(self) -> None:
        plan = self.plan
        port = free_port()
        self.start_node("server", ["server", "--listen", "127.0.0.1", "--port", str(port),
                                   "--workers", str(plan.server_workers),
                                   "--expect-connections", str(plan.users)])
        first = 0
        for index, users in enumerate(split_count(plan.users, plan.clients)):
            self.start_node(f"client{index + 1:02d}", [
                "client", "--server", f"127.0.0.1:{port}", "--first-user", str(first),
                "--users", str(users), "--connect-rate", str(plan.connect_rate), "--qps", "0",
            ])
            first += users

    def snapshot(self) -> dict[str, Any]:
        server = self.server.status()
        client_counters: dict[str, int] = {}
        p99 = 0
        for node in self.clients:
            status = node.status()
            for key, value in status["counters"].items():
                client_counters[key] = client_counters.get(key, 0) + value
            p99 = max(p99, status.get("latency_us", {}).get("lat_p99_us", 0))
        return {"server": server["counters"], "client": client_counters, "p99": p99,
                "queued": server["queued"], "at": time.time()}

    def settled_snapshot(self) -> dict[str, Any]:
        """Counters that agree and held still over a tick (the load is off), or, after
        SETTLE_TIMEOUT_S, the counters as they are: a mismatch is reported, not waited out."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        earlier = self.snapshot()
        while True:
            time.sleep(TICK_S)
            current = self.snapshot()
            held_still = (current["server"], current["client"]) == (earlier["server"],
                                                                   earlier["client"])
            if (held_still and counters_agree(current)) or time.monotonic() >= deadline:
                return current
            earlier = current

    def set_phase(self, name: str, qps: int) -> None:
        for node in self.nodes:
            node.get("/phase", name=name)
        for node, share in zip(self.clients, split_count(qps, len(self.clients)), strict=True):
            node.get("/qps", qps=share)

    def watch(self, phase: str, seconds: float, until: Any = None) -> dict[str, Any]:
        """Print one line a second for ``seconds`` (or until ``until(snapshot)``)."""
        previous = self.snapshot()
        started = time.monotonic()
        while True:
            time.sleep(TICK_S)
            current = self.snapshot()
            print_line(phase, time.monotonic() - started, previous, current)
            previous = current
            elapsed = time.monotonic() - started
            if (until is not None and until(current)) or elapsed >= seconds:
                return current

    def run_phase(self, name: str, qps: int, seconds: float, until: Any = None) -> None:
        plan = self.plan

        def mark(event: str) -> None:
            mark_phase(plan.run_dir, plan.run_id, name, event, "controller", qps,
                       target_connections=plan.users)

        mark("start")
        self.set_phase(name, qps)
        if name != "phase1":
            total = int(plan.shake_rate * seconds)
            self.server.get("/shake", qps=plan.shake_rate, total=total)
            self.server.get("/send", qps=plan.send_rate,
                        total=int(plan.send_rate * seconds), min_uid=0, max_uid=plan.users - 1)
            mark("hold_start")
        self.watch(name, seconds, until)
        if name != "phase1":
            mark("hold_end")
        mark("end")

    def stop(self) -> list[int]:
        """The clients drain first, then the server (only processes we started)."""
        return [node.stop() for node in [*self.clients, self.server]]


def print_line(phase: str, elapsed: float, before: dict, after: dict) -> None:
    span = max(after["at"] - before["at"], 1e-6)

    def rate(side: str, key: str) -> float:
        return (after[side].get(key, 0) - before[side].get(key, 0)) / span

    print(
        f"[{phase} {elapsed:5.0f}s] conns {after['server'].get('connections', 0):>7} | "
        f"client qps {rate('client', 'requests'):7.0f} | server qps "
        f"{rate('server', 'requests'):7.0f} | generated/s {rate('server', 'generated'):5.0f} "
        f"| won/s {rate('server', 'won'):5.0f} | claims/s {rate('server', 'claims'):5.0f} | "
        f"p99 {after['p99'] / 1000:6.1f} ms | errors "
        f"{after['server'].get('protocol_errors', 0) + after['client'].get('timeouts', 0)}",
        flush=True,
    )


def write_run_metadata(plan: LocalRunPlan) -> None:
    """run.json: what the report shows as the run's configuration."""
    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(plan).items()}
    meta = {"driver": "hongbao local-run", "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "config": config}
    (plan.run_dir / "run.json").write_text(json.dumps(meta, indent=1))


def run_local(plan: LocalRunPlan) -> int:
    print(f"run {plan.run_id}: {plan.users} users on {plan.clients} client nodes, "
          f"server with {plan.server_workers} workers; run directory {plan.run_dir}")
    run = LocalRun(plan)
    write_run_metadata(plan)
    codes: list[int] = []
    final: dict[str, Any] = {}
    try:
        run.start()
        users = plan.users
        run.run_phase("phase1", 0, plan.connect_timeout,
                      until=lambda s: s["server"].get("connections", 0) >= users
                      and s["client"].get("logins", 0) >= users)
        run.run_phase("phase2", plan.phase2_qps, plan.phase_seconds)
        run.run_phase("phase3", plan.phase3_qps, plan.phase_seconds)
        run.set_phase("drain", 0)
        final = run.settled_snapshot()
    finally:
        codes = run.stop()
    if not final:
        return 1
    from hongbao.report.build import write_report  # lazily: it loads matplotlib

    balance = reconcile(ledger_files(plan.run_dir))
    series = build_series(points_from_run_dir(plan.run_dir), plan.run_id,
                          histograms_from_run_dir(plan.run_dir))
    report = write_report(series, plan.run_dir / "report", balance, run_metadata(plan.run_dir))
    console = report_console()
    print_summary(console, report.phases, report.balance, report.projection, report.clock)
    agree = counters_agree(final)
    console.print(
        f"counters: server requests {final['server']['requests']:,} = client responses "
        f"{final['client']['responses']:,}; claimed {final['server']['claimed_amount']:,} "
        f"(server) = {final['client']['claimed_amount']:,} (client): "
        f"{'OK' if agree else 'MISMATCH'}")
    console.print(f"processes exited with {codes}")
    console.print(f"report: {report.html}; summary: {report.summary}")
    return 0 if report.balance.ok and agree and not any(codes) else 1
