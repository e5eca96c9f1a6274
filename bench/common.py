"""What the benchmark scripts share: real nodes on loopback, the CPU and memory of their
processes, requests counted per whole second, medians over runs, and a Markdown table.

The node benchmarks import nothing from ``hongbao`` themselves: every such import is here,
so a moved module is fixed in one place. (``ledger_cost.py`` drives a server worker in
process and imports it directly.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from hongbao import plan
from hongbao.local.node_process import NodeProcess, free_port, start_node
from hongbao.metrics.pointfile import read_points

KB = 1024
STOP_TIMEOUT = 20.0
POINTS_TIMEOUT = 10.0  # seconds to wait for a worker's per-second metrics point
SOURCE_IPS = "127.0.0.2-127.0.0.3"  # two addresses: source ports never run out

Run = TypeVar("Run")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fd_hard_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def connections_per_worker() -> int:
    """What one worker may hold: plan.py's rule at the hard limit (nodes raise to it)."""
    return plan.connections_per_worker(fd_hard_limit())


def workers_for(connections: int) -> int:
    """The fewest workers that hold ``connections``: plan.py's rule at the hard limit."""
    return plan.workers_for(connections, limit=fd_hard_limit())


# ---------------------------------------------------------------- processes


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants alive now."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def node_workers(node: NodeProcess) -> list[psutil.Process]:
    """The node's worker processes, by their titles, wherever they sit under it (the fork
    server starts them): not multiprocessing's fork server or resource tracker."""
    workers = []
    for child in psutil.Process(node.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if " ".join(child.cmdline()).startswith("hongbao "):
                workers.append(child)
    return workers


def cpu_by_pid(processes: Sequence[psutil.Process]) -> dict[int, tuple[float, float]]:
    """User and system CPU seconds of each process still alive."""
    seconds = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            seconds[process.pid] = (times.user, times.system)
    return seconds


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent running something since boot (guest time is already in
    user time; steal is the hypervisor's)."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def rss_bytes(process: psutil.Process) -> int:
    return process.memory_info().rss


def pss_bytes(process: psutil.Process) -> int:
    """Proportional set size from /proc/PID/smaps_rollup: shared pages split among sharers."""
    for line in Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * KB
    raise RuntimeError(f"no Pss line in /proc/{process.pid}/smaps_rollup")


def wait_until(what: str, done: Callable[[], bool], timeout: float,
               nodes: Sequence[NodeProcess] = ()) -> float:
    """Poll ``done`` until true; returns the seconds it took. Fails when a node exits."""
    started = time.monotonic()
    while not done():
        for node in nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited with {node.process.returncode} "
                                   f"while waiting for {what}; see {node.log_path}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


# ---------------------------------------------------------------- nodes


@dataclass
class Bench:
    """A temporary run directory and the nodes started in it. Leaving the ``with`` block
    stops every node (clients first) and any worker a node left behind, by pid; the
    directory is kept when asked, on an error, or when a node logged a warning."""

    keep: bool = False
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hongbao-bench-")))
    nodes: list[NodeProcess] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    server_logins_before: dict[str, int] = field(default_factory=dict)  # by client name

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        while self.nodes:
            self.stop(self.nodes[-1])
        self.warnings = log_warnings(self.run_dir)
        if self.keep or kind is not None or self.warnings:
            log(f"run directory kept: {self.run_dir}")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def server(self, workers: int, expect_connections: int = 0) -> NodeProcess:
        port = free_port()
        return self._start("server", [
            "server", "--listen", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--expect-connections", str(expect_connections)], port)

    def client(self, server: NodeProcess, users: int, workers: int, name: str = "client",
               first_user: int = 0, connect_rate: float = 5000.0,
               source_ips: str = SOURCE_IPS) -> NodeProcess:
        """A client node that starts connecting its users at once, shaking at 0 QPS. The
        server's login count is taken first: ``wait_logged_in`` counts from it."""
        self.server_logins_before[name] = server.counters().get("logins", 0)
        return self._start(name, [
            "client", "--server", f"127.0.0.1:{server.port}", "--first-user", str(first_user),
            "--users", str(users), "--workers", str(workers), "--source-ips", source_ips,
            "--source-ports", "10000-60999", "--connect-rate", str(connect_rate),
            "--qps", "0"])

    def _start(self, name: str, args: list[str], port: int = 0) -> NodeProcess:
        node = start_node(self.run_dir, "bench", name, args, port=port)
        self.nodes.append(node)
        return node

    def stop(self, node: NodeProcess) -> None:
        """SIGTERM the node (it drains its workers), then kill what it left behind."""
        workers = node_workers(node) if node.process.poll() is None else []
        code = node.stop(STOP_TIMEOUT)
        self.nodes.remove(node)
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
        if code not in (0, None):
            log(f"{node.name} exited with {code}; see {node.log_path}")

    def wait_logged_in(self, server: NodeProcess, client: NodeProcess, users: int,
                       timeout: float) -> float:
        """Wait until both sides count ``users`` logins more than before the client started
        (its first logins may come before this is called); returns seconds."""
        server_before = self.server_logins_before[client.name]
        counted = {"server": 0, "client": 0}

        def done() -> bool:
            counted["server"] = server.counters().get("logins", 0) - server_before
            counted["client"] = client.counters().get("logins", 0)
            return counted["server"] >= users and counted["client"] >= users

        try:
            return wait_until(f"{users:,} logins", done, timeout, self.nodes)
        except RuntimeError as error:
            hint = (f" (only the client got there: did it reach another listener on port "
                    f"{server.port}?)"
                    if counted["client"] >= users > counted["server"] else "")
            log(f"server /status at the timeout: {json.dumps(server.status())}")
            raise RuntimeError(f"{error}; server counted {counted['server']:,}, client "
                               f"{counted['client']:,}{hint}") from None

    def requests_per_second(self, pattern: str, start: int, end: int,
                            key: str = "requests") -> list[int]:
        """``key`` summed over the point files matching ``pattern`` (one per worker), for
        each whole second ``start..end-1``; waits for every file's last second."""
        paths = sorted((self.run_dir / "metrics").glob(pattern))
        if not paths:
            raise RuntimeError(f"no metrics file {pattern} in {self.run_dir / 'metrics'}")
        totals = [0] * (end - start)
        for path in paths:
            for second, fields in enumerate(seconds_of(path, start, end)):
                totals[second] += int(fields.get(key, 0))
        return totals


def seconds_of(path: Path, start: int, end: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + POINTS_TIMEOUT
    while True:
        by_second = {point.time: point.fields for point in read_points(path)
                     if start <= point.time < end}
        if end - 1 in by_second:
            return [by_second.get(second, {}) for second in range(start, end)]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: no point for second {end - 1} after "
                               f"{POINTS_TIMEOUT:.0f} s")
        time.sleep(0.05)


def log_warnings(run_dir: Path) -> list[str]:
    """The nodes' WARNING and ERROR log lines, without their timestamps."""
    found = []
    for path in sorted((run_dir / "logs").glob("*.log")):
        for text in path.read_text(errors="replace").splitlines():
            if " WARNING " in text or " ERROR " in text:
                found.append(f"{path.stem}: {text.split(' ', 2)[-1].strip()}")
    return found


@contextlib.contextmanager
def stopped_on_signals() -> Iterator[None]:
    """SIGTERM ends the script like Ctrl-C, so ``with Bench()`` blocks stop their nodes."""

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def whole_numbers(text: str) -> list[int]:
    """An argparse type: a comma list of whole numbers >= 1, such as ``1,10,100``."""
    try:
        values = [int(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of whole numbers: {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"every number must be >= 1: {text!r}")
    return values


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every node benchmark takes: --runs, --workers, --json, --keep-run-dir."""
    parser.add_argument("--runs", type=int, default=3, help="fresh runs to take medians over")
    parser.add_argument("--workers", type=int,
                        help="workers per side (default: the fewest the open-files limit "
                             "allows)")
    parser.add_argument("--json", type=Path, help="save the raw numbers of every run here")
    parser.add_argument("--keep-run-dir", action="store_true",
                        help="keep the temporary run directory (logs, metrics, ledgers)")


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace,
                        connections: int) -> None:
    """Validate the common flags; default --workers to what ``connections`` need."""
    if args.runs < 1 or connections < 1:
        parser.error("--runs and the number of connections must be >= 1")
    args.workers = args.workers or workers_for(connections)
    if args.workers < 1 or connections / args.workers > connections_per_worker():
        parser.error(f"{connections} connections need at least {workers_for(connections)} "
                     f"worker(s) per side: each holds at most {connections_per_worker()} "
                     f"under the open-files limit {fd_hard_limit()}")


def run_bench(args: argparse.Namespace, one_run: Callable[[argparse.Namespace], Run],
              report: Callable[[argparse.Namespace, list[Run]], None]) -> int:
    """``--runs`` fresh runs, their raw numbers to ``--json``, then the report. A failure
    is one line and exit code 1; Ctrl-C (or SIGTERM) stops the nodes and exits 130."""
    try:
        with stopped_on_signals():
            runs = []
            for index in range(args.runs):
                log(f"run {index + 1}/{args.runs}")
                runs.append(one_run(args))
    except KeyboardInterrupt:
        log("interrupted; processes stopped")
        return 130
    except RuntimeError as error:
        log(f"error: {error}")
        return 1
    save_json(args.json, {"settings": vars(args), "runs": runs})
    report(args, runs)
    return 0


# ---------------------------------------------------------------- figures


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def figure(values: Sequence[float], digits: int = 1) -> str:
    """'median (min-max)' over runs, or the one value."""
    if len(values) == 1:
        return f"{values[0]:,.{digits}f}"
    return f"{median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                notes: Sequence[str] = ()) -> None:
    """A Markdown table (ready for a README), then its notes."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    for note in notes:
        print(f"\n{note}")


def save_json(path: Path | None, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON (dataclasses as dicts, anything else as its str)."""

    def plain(value: Any) -> Any:
        return asdict(value) if is_dataclass(value) else str(value)

    if path is not None:
        path.write_text(json.dumps(data, indent=1, default=plain))


def cpu_count_note() -> str:
    load = os.getloadavg()[0]
    return (f"Machine: {psutil.cpu_count()} cores, shared with other work (load average "
            f"{load:.1f} at the end); server, client and this script share them.")
