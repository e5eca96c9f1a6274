#!/usr/bin/env python3
"""What a connection and a shake request cost, server and client side (DESIGN §8).

Runs a real server node (one worker) and a real client node (one worker) on loopback,
holds ``--connections`` idle logged-in connections, then drives shake requests at each
``--qps-levels`` rate and measures, with psutil, the worker processes' RSS and CPU time.
Prints one table of medians over ``--runs`` fresh runs next to the original Go figures
and the targets.

    .venv/bin/python bench/server_cost.py [--runs 3] [--connections 19000]
        [--qps-levels 1000,5000,10000,19000] [--window 5] [--json PATH]
        [--profile [--profile-qps 10000 --profile-seconds 15 --profile-dir DIR]]

How each figure is taken:
- RSS per connection: worker RSS once all connections are logged in and idle (qps 0),
  minus the base RSS, divided by the connections. The server's base is its worker before
  any client connects. A client worker starts connecting as soon as it starts, so its
  base comes from a 1-user probe client node of the same build, run just before.
- CPU per request: after ``--settle`` seconds at a rate, worker CPU time (user + sys)
  over ``--window`` whole seconds, divided by the requests counted in the same seconds
  (the per-second points each worker writes to its metrics file, stamped with the
  second they cover).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import psutil

from hongbao.local.node_process import NodeProcess, free_port, start_node
from hongbao.metrics.pointfile import read_points
from hongbao.plan import FD_RESERVE

KB = 1024
MB = 1024 * 1024
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
POINTS_TIMEOUT = 10.0  # seconds to wait for a worker's per-second metrics point
SHORT_FRACTION = 0.97  # achieved below this fraction of the target rate is flagged
IDLE_LEAVES = ("epoll_pwait (libc.so.6)", "epoll_wait (libc.so.6)")  # the loop waiting
INCLUSIVE_CUTOFF = 95.0  # py-spy summary: hide frames in at least this % of samples
MAX_RETRIES_PER_RUN = 3  # keeps a busy machine from stretching a run much past a minute
BUSY_MACHINE = 0.2  # other processes' CPU (cores) in a window: re-measure, then warn

# DESIGN §8: the original Go server and client at 19k connections, on this machine.
GO_SERVER_KB_PER_CONN = "3.8-4.0"
GO_SERVER_BASE = "617 (prealloc.)"
GO_SERVER_US_PER_REQ = "~26"
GO_CLIENT_KB_PER_CONN = "~20"
GO_CLIENT_US_PER_REQ = "~37"
TARGET_SERVER_KB_PER_CONN = 1.5
TARGET_SERVER_US_PER_REQ = 20.0
TARGET_CLIENT_KB_PER_CONN = 3.0
TARGET_CLIENT_US_PER_REQ = 25.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


@dataclass
class BenchNode(NodeProcess):
    """A node we started, and the worker processes it spawned (measured with psutil)."""

    workers: list[psutil.Process] = field(default_factory=list)

    @property
    def worker(self) -> psutil.Process:
        return self.workers[0]

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the node (it drains its workers), kill it after ``timeout``, and then
        any worker it left behind."""
        code = super().stop(timeout)
        for worker in self.workers:  # orphans, if the node died before draining them
            with contextlib.suppress(psutil.NoSuchProcess):
                if worker.is_running():
                    worker.terminate()
                    try:
                        worker.wait(5)
                    except psutil.TimeoutExpired:
                        worker.kill()
        return code


def spawned_workers(pid: int) -> list[psutil.Process]:
    """The node's multiprocessing-spawned workers (not its resource tracker)."""
    workers = []
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
    return workers


def start_bench_node(run_dir: Path, name: str, args: list[str], workers: int) -> BenchNode:
    started = start_node(run_dir, "bench", name, args, ready_timeout=READY_TIMEOUT)
    node = BenchNode(**{f.name: getattr(started, f.name) for f in fields(started)})
    node.workers = spawned_workers(node.process.pid)
    if len(node.workers) != workers:
        node.stop(5)
        raise RuntimeError(f"{name}: expected {workers} worker processes, found "
                           f"{len(node.workers)}")
    return node


def wait_until(what: str, done: Callable[[], bool], timeout: float,
               nodes: Iterable[BenchNode]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        for node in nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited with {node.process.returncode} "
                                   f"while waiting for {what}; see {node.log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def rss(process: psutil.Process) -> int:
    return process.memory_info().rss


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def sys_seconds(process: psutil.Process) -> float:
    return process.cpu_times().system


def process_cpu_table(exclude: set[int]) -> dict[tuple[int, float], float]:
    """CPU seconds of every process on the machine but ``exclude``, keyed by (pid, start)."""
    table = {}
    for proc in psutil.process_iter(["cpu_times", "create_time"]):
        times = proc.info["cpu_times"]
        if proc.pid in exclude or times is None:
            continue
        table[(proc.pid, proc.info["create_time"])] = times.user + times.system
    return table


def cpu_growth(before: dict[tuple[int, float], float],
               after: dict[tuple[int, float], float], pids: set[int],
               among: bool) -> float:
    """CPU the processes alive at the end used since ``before`` (all of it, if newer), over
    the processes in ``pids`` (``among``) or not in them; ones that ended are missed."""
    return sum(cpu - before.get(key, 0.0) for key, cpu in after.items()
               if (key[0] in pids) == among)


def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


# ---------------------------------------------------------------- one run


@dataclass
class Settings:
    connections: int
    qps_levels: list[int]
    window: int
    settle: float
    idle_settle: float
    connect_rate: float
    source_ips: str
    shake_rate: float
    profile: bool
    profile_qps: int
    profile_seconds: int
    profile_dir: Path | None
    profile_native: bool
    busy_retries: int


class WindowInvalid(Exception):
    """A window that cannot be measured (a worker wrote no point for one of its seconds)."""


def window_problem(level: dict[str, Any]) -> str:
    """Why a measured window is not representative, or ''."""
    foreign = level["foreign_cpu_s"] / level["window_s"]
    if foreign > BUSY_MACHINE:
        return f"other processes used {foreign:.0%} of a core"
    if level["target_qps"] and 0 in level["server_requests_per_second"]:
        return "the server worker stalled (a second with no requests)"
    if level["target_qps"] and 0 in level["client_requests_per_second"]:
        return "the client worker stalled (a second with no requests)"
    return ""


class BenchRun:
    """One fresh server node and client node; ``measure()`` returns the raw numbers."""

    def __init__(self, settings: Settings, run_dir: Path, index: int) -> None:
        self.s = settings
        self.run_dir = run_dir
        self.index = index
        self.nodes: list[BenchNode] = []
        self.port = free_port()
        self.retries_left = MAX_RETRIES_PER_RUN

    def _start(self, name: str, args: list[str]) -> BenchNode:
        node = start_bench_node(self.run_dir, name, args, workers=1)
        self.nodes.append(node)
        return node

    def _client_args(self, first_user: int, users: int, source_ips: str) -> list[str]:
        return ["client", "--server", f"127.0.0.1:{self.port}", "--first-user", str(first_user),
                "--users", str(users), "--workers", "1", "--source-ips", source_ips,
                "--source-ports", "10000-60999", "--connect-rate", str(self.s.connect_rate),
                "--qps", "0"]

    def stop(self) -> list[int | None]:
        codes = [node.stop() for node in reversed(self.nodes)]  # clients first
        self.nodes.clear()
        return codes

    def measure(self) -> dict[str, Any]:
        s = self.s
        result: dict[str, Any] = {"run": self.index, "connections": s.connections}
        server = self._start("server", [
            "server", "--listen", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--expect-connections", str(s.connections)])
        time.sleep(1.0)
        result["server_base_rss"] = rss(server.worker)

        # The client's base: a 1-user client node (user id outside the measured range).
        probe = self._start("probe", self._client_args(s.connections, 1, ""))
        wait_until("the probe client's login", lambda: probe.counters().get("logins", 0) >= 1,
                   30, self.nodes)
        time.sleep(1.0)
        result["client_base_rss"] = rss(probe.worker)
        probe.stop()
        self.nodes.remove(probe)

        started = time.monotonic()
        client = self._start("client", self._client_args(0, s.connections, s.source_ips))
        n = s.connections

        def all_logged_in() -> bool:
            sc, cc = server.counters(), client.counters()
            return (sc.get("connections", 0) >= n and sc.get("logins", 0) >= n
                    and cc.get("logins", 0) >= n)

        wait_until(f"{n} logged-in connections", all_logged_in,
                   n / s.connect_rate + 60, self.nodes)
        result["connect_seconds"] = round(time.monotonic() - started, 2)
        log(f"  {n} connections logged in after {result['connect_seconds']:.1f} s")
        time.sleep(s.idle_settle)
        result["server_conn_rss"] = rss(server.worker)
        result["client_conn_rss"] = rss(client.worker)
        result["server_bytes_per_conn"] = (result["server_conn_rss"]
                                           - result["server_base_rss"]) / n
        result["client_bytes_per_conn"] = (result["client_conn_rss"]
                                           - result["client_base_rss"]) / n
        result["server_counters_idle"] = server.counters()
        idle = self._window(server, client, 0)
        result["idle"] = idle
        log(f"  idle: server worker {idle['server_cpu_util'] * 1000:.1f} ms/s, client worker "
            f"{idle['client_cpu_util'] * 1000:.1f} ms/s of CPU")

        if s.shake_rate > 0:
            server.get("/shake", qps=s.shake_rate, total=2**31 - 1)
        levels = []
        for qps in s.qps_levels:
            client.get("/qps", qps=qps)
            time.sleep(s.settle)
            level = self._window(server, client, qps)
            levels.append(level)
            log(f"  {qps:>6} qps target: server {level['server_qps']:8.0f}/s "
                f"{level['server_us_per_req']:6.1f} µs/req | client {level['client_qps']:8.0f}/s "
                f"{level['client_us_per_req']:6.1f} µs/req | timeouts {level['timeouts']}")
        result["levels"] = levels
        if s.profile:
            result["profile"] = self._profile(server, client)
        # No /qps 0 before stopping: a client connection with more than one shake in flight
        # then raises OverflowError (pacer period = inf) and is dropped; the node's drain
        # waits for what is in flight anyway.
        time.sleep(1.0)
        result["server_counters_final"] = server.counters()
        result["client_counters_final"] = client.counters()
        return result

    def _window(self, server: BenchNode, client: BenchNode, qps: int) -> dict[str, Any]:
        """``_window_once``, measured again (up to ``--busy-retries`` times) when other
        processes kept more than BUSY_MACHINE of a core busy or a worker stalled (a second
        with no requests at a non-zero rate, or a per-second point that never came)."""
        discarded: list[dict[str, Any]] = []
        while True:
            try:
                level = self._window_once(server, client, qps)
                problem = window_problem(level)
            except WindowInvalid as error:
                if len(discarded) >= self.s.busy_retries or not self.retries_left:
                    raise RuntimeError(str(error)) from None
                level, problem = {"error": str(error)}, str(error)
            if not problem or len(discarded) >= self.s.busy_retries or not self.retries_left:
                level["problem"] = problem
                level["discarded_windows"] = discarded
                return level
            self.retries_left -= 1
            log(f"  {qps:>6} qps target: {problem}; measuring again")
            level["problem"] = problem
            discarded.append(level)
            time.sleep(1.0)

    def _window_once(self, server: BenchNode, client: BenchNode,
                     qps: int) -> dict[str, Any]:
        """Worker CPU over ``window`` whole wall-clock seconds, read right as the seconds
        turn, and the requests counted in exactly those seconds: each worker writes one
        point per second to its metrics file (DESIGN §5) just after the second turns,
        stamped with that second. (The nodes' ``/status`` counters are only as fresh as
        the last tick that reached the node, which lags when a worker's loop is busy.)"""
        start = math.floor(time.time()) + 1
        end = start + self.s.window
        exclude = {server.worker.pid, client.worker.pid}
        ours = {os.getpid(), server.process.pid, client.process.pid}  # nodes and this script
        sleep_until(start + 0.003)
        server_cpu0, client_cpu0 = cpu_seconds(server.worker), cpu_seconds(client.worker)
        server_sys0, client_sys0 = sys_seconds(server.worker), sys_seconds(client.worker)
        softirq0 = psutil.cpu_times().softirq
        others0 = process_cpu_table(exclude)
        sleep_until(end + 0.003)
        server_cpu1, client_cpu1 = cpu_seconds(server.worker), cpu_seconds(client.worker)
        server_sys1, client_sys1 = sys_seconds(server.worker), sys_seconds(client.worker)
        softirq1 = psutil.cpu_times().softirq
        others1 = process_cpu_table(exclude)
        server_seconds = self._points(f"server-{server.name}-w*.lp", start, end)
        client_seconds = self._points(f"client-{client.name}-w*.lp", start, end)
        latency_seconds = self._points(f"latency-{client.name}.lp", start, end)

        def total(seconds: list[dict[str, Any]], key: str) -> int:
            return sum(int(fields.get(key, 0)) for fields in seconds)

        window = float(self.s.window)
        server_requests = total(server_seconds, "requests")
        client_requests = total(client_seconds, "requests")
        server_cpu = server_cpu1 - server_cpu0
        client_cpu = client_cpu1 - client_cpu0
        return {
            "target_qps": qps,
            "window_start": start,
            "window_s": window,
            "server_requests": server_requests,
            "server_responses": total(server_seconds, "responses"),
            "server_overload": total(server_seconds, "overload"),
            "client_requests": client_requests,
            "client_responses": total(client_seconds, "responses"),
            "timeouts": total(client_seconds, "timeouts"),
            "send_skipped": total(client_seconds, "send_skipped"),
            "server_requests_per_second": [int(f.get("requests", 0)) for f in server_seconds],
            "client_requests_per_second": [int(f.get("requests", 0)) for f in client_seconds],
            "client_p99_us_per_second": [int(f.get("lat_p99_us", 0)) for f in latency_seconds],
            "server_cpu_s": server_cpu,
            "client_cpu_s": client_cpu,
            "server_sys_s": server_sys1 - server_sys0,
            "client_sys_s": client_sys1 - client_sys0,
            "softirq_s": softirq1 - softirq0,
            "ours_cpu_s": cpu_growth(others0, others1, ours, among=True),
            "foreign_cpu_s": cpu_growth(others0, others1, ours, among=False),
            "server_qps": server_requests / window,
            "client_qps": client_requests / window,
            "server_cpu_util": server_cpu / window,
            "client_cpu_util": client_cpu / window,
            "server_us_per_req": server_cpu * 1e6 / server_requests if server_requests else
            math.inf,
            "client_us_per_req": client_cpu * 1e6 / client_requests if client_requests else
            math.inf,
        }

    def _points(self, pattern: str, start: int, end: int) -> list[dict[str, Any]]:
        """The fields of one point file's per-second points (a worker's, or a client
        node's merged latency) for seconds ``start..end-1``, waiting (up to
        POINTS_TIMEOUT) for the last one to be written."""
        paths = list((self.run_dir / "metrics").glob(pattern))
        if len(paths) != 1:
            raise RuntimeError(f"expected one metrics file {pattern}, found {paths}")
        deadline = time.monotonic() + POINTS_TIMEOUT
        while True:
            by_second = {point.time: point.fields for point in read_points(paths[0])
                         if start <= point.time < end}
            if end - 1 in by_second:
                return [by_second.get(second, {}) for second in range(start, end)]
            if time.monotonic() > deadline:
                raise WindowInvalid(f"{pattern}: no metrics point for second {end - 1} "
                                    f"after {POINTS_TIMEOUT:.0f} s ({paths[0]})")
            time.sleep(0.05)

    def _profile(self, server: BenchNode, client: BenchNode) -> dict[str, Any]:
        """py-spy both workers at ``--profile-qps`` (outside the measured windows)."""
        py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:"
                              f"{os.environ.get('PATH', '')}")
        if py_spy is None:
            log("  --profile: py-spy not found (.venv/bin/pip install py-spy); skipped")
            return {}
        out_dir = self.s.profile_dir or self.run_dir / "profile"
        out_dir.mkdir(parents=True, exist_ok=True)
        client.get("/qps", qps=self.s.profile_qps)
        time.sleep(self.s.settle)
        before = server.counters()["requests"]
        spies = {}
        for node in (server, client):
            path = out_dir / f"{node.name}-{self.s.profile_qps}qps.txt"
            spies[node.name] = (path, subprocess.Popen(
                [py_spy, "record", "--pid", str(node.worker.pid), "--duration",
                 str(self.s.profile_seconds), "--rate", "250", "--format", "raw",
                 # --native (C frames: uvloop, libc) needs py-spy to pause the process
                 *(["--native"] if self.s.profile_native else ["--nonblocking"]),
                 "--output", str(path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        profile: dict[str, Any] = {}
        for name, (path, spy) in spies.items():
            try:
                _, err = spy.communicate(timeout=self.s.profile_seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
            if spy.returncode != 0 or not path.exists():
                log(f"  py-spy on {name} failed: {err.decode(errors='replace').strip()}")
                continue
            profile[name] = {"raw": str(path), **summarise_raw(path)}
        achieved = (server.counters()["requests"] - before) / self.s.profile_seconds
        profile["achieved_server_qps"] = achieved
        log(f"  profile at {self.s.profile_qps} qps (achieved ~{achieved:.0f}/s): {out_dir}")
        return profile


# ---------------------------------------------------------------- py-spy summary


def _short(frame: str) -> str:
    """'data_received (hongbao/server/connection.py:27)' -> 'data_received (connection.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({Path(path).name})" if path else name


def summarise_raw(path: Path, top: int = 20) -> dict[str, Any]:
    """Self (leaf) and inclusive sample shares per function from ``py-spy record --format
    raw``. Inclusive shares leave out the frames in nearly every sample (process start-up,
    the event loop's run)."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        samples += count
        self_samples[frames[-1]] += count
        for name in set(frames):
            total_samples[name] += count

    idle = sum(self_samples.pop(name, 0) for name in IDLE_LEAVES)
    busy = samples - idle
    for name in IDLE_LEAVES:
        total_samples.pop(name, None)

    def share(counter: Counter[str], limit: float = 101.0) -> list[tuple[str, float]]:
        rows = [(name, round(100 * c / max(busy, 1), 1)) for name, c in counter.most_common()]
        return [row for row in rows if row[1] < limit][:top]

    return {"samples": samples, "idle_samples": idle, "self_pct": share(self_samples),
            "total_pct": share(total_samples, limit=INCLUSIVE_CUTOFF)}


# ---------------------------------------------------------------- report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def spread(values: list[float], fmt: str) -> str:
    if len(values) < 2:
        return "—"
    return f"{format(min(values), fmt)}-{format(max(values), fmt)}"


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def build_rows(runs: list[dict[str, Any]], levels: list[int]) -> list[list[str]]:
    """[metric, ours, spread, achieved, go, target, result] rows, with '' rows as sections."""
    rows: list[list[str]] = []

    def col(key: str, scale: float = 1.0) -> list[float]:
        return [r[key] / scale for r in runs]

    def level_col(qps: int, key: str) -> list[float]:
        return [lv[key] for r in runs for lv in r["levels"] if lv["target_qps"] == qps]

    def achieved(qps: int, key: str) -> str:
        rate = median(level_col(qps, key))
        short = " SHORT" if rate < SHORT_FRACTION * qps else ""
        side = key.removesuffix("_qps")
        util = median(level_col(qps, f"{side}_cpu_util"))
        sys_share = median([lv[f"{side}_sys_s"] / lv[f"{side}_cpu_s"]
                            for r in runs for lv in r["levels"]
                            if lv["target_qps"] == qps and lv[f"{side}_cpu_s"]])
        return f"{rate:,.0f}/s, {util:.0%} cpu, {sys_share:.0%} sys{short}"

    for side, go_kb, target_kb, go_us, target_us in (
        ("server", GO_SERVER_KB_PER_CONN, TARGET_SERVER_KB_PER_CONN, GO_SERVER_US_PER_REQ,
         TARGET_SERVER_US_PER_REQ),
        ("client", GO_CLIENT_KB_PER_CONN, TARGET_CLIENT_KB_PER_CONN, GO_CLIENT_US_PER_REQ,
         TARGET_CLIENT_US_PER_REQ),
    ):
        base_note = " (1-user probe)" if side == "client" else ""
        base = col(f"{side}_base_rss", MB)
        rows.append([f"{side} base RSS{base_note}, MB", f"{median(base):.1f}",
                     spread(base, ".1f"), "", GO_SERVER_BASE if side == "server" else "—",
                     "—", ""])
        held = col(f"{side}_conn_rss", MB)
        rows.append([f"{side} RSS with {runs[0]['connections']:,} idle conns, MB",
                     f"{median(held):.1f}", spread(held, ".1f"), "", "—", "—", ""])
        per_conn = col(f"{side}_bytes_per_conn", KB)
        rows.append([f"{side} RSS per idle conn, KB", f"{median(per_conn):.2f}",
                     spread(per_conn, ".2f"), "", go_kb, f"≤ {target_kb:g}",
                     verdict(median(per_conn), target_kb)])
        idle = [r["idle"][f"{side}_cpu_util"] * 1000 for r in runs]
        rows.append([f"{side} CPU when idle (qps 0), ms/s", f"{median(idle):.1f}",
                     spread(idle, ".1f"), "", "—", "—", ""])
        for qps in levels:
            us = level_col(qps, f"{side}_us_per_req")
            rows.append([f"{side} CPU/request @ {qps:,} qps, µs", f"{median(us):.1f}",
                         spread(us, ".1f"), achieved(qps, f"{side}_qps"), go_us,
                         f"≤ {target_us:g}", verdict(median(us), target_us)])
        if len(levels) >= 2:
            slopes = [marginal_us(r["levels"], side) for r in runs]
            rows.append([f"{side} marginal CPU/request (slope), µs",
                         f"{median(slopes):.1f}", spread(slopes, ".1f"), "", go_us,
                         f"≤ {target_us:g}", "info"])
        rows.append([])
    return rows[:-1]


def marginal_us(levels: list[dict[str, Any]], side: str) -> float:
    """Least-squares slope of worker CPU (s/s) over achieved requests/s, in µs per request:
    the cost of one more request, without the fixed per-second work."""
    xs = [lv[f"{side}_qps"] for lv in levels]
    ys = [lv[f"{side}_cpu_util"] for lv in levels]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return math.nan
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var * 1e6


def footer(runs: list[dict[str, Any]], settings: Settings, warnings: list[str],
           failures: list[str]) -> list[str]:
    final = [r.get("client_counters_final", {}) for r in runs]
    server_final = [r.get("server_counters_final", {}) for r in runs]

    def total(dicts: list[dict[str, int]], key: str) -> int:
        return sum(d.get(key, 0) for d in dicts)

    lines = [
        f"Medians over {len(runs)} fresh run(s); 1 server worker and 1 client worker holding "
        f"{settings.connections:,} connections (client binds {settings.source_ips}); "
        f"CPU = worker user+sys over {settings.window} s windows after {settings.settle:g} s "
        "settling; KB = 1024 bytes.",
        "2-core machine: the server and the client (and this script) share the same 2 cores, "
        "so each side's numbers include contention with the other; a QPS level marked SHORT "
        f"achieved < {SHORT_FRACTION:.0%} of its target.",
        f"Server RSS delta is the worker from before any client to {settings.idle_settle:g} s "
        "after all connections logged in (qps 0); the client base is a 1-user probe client "
        "worker, so the client delta includes its per-user table.",
        "Shakes are answered 'none' (no packet generator) unless --shake-rate is set"
        + (f" (here {settings.shake_rate:g} packets/s)." if settings.shake_rate else "."),
        "Go original and targets per DESIGN §8. Counters over all runs: connect errors "
        f"{total(final, 'connect_errors')}, disconnects {total(final, 'disconnects')}, "
        f"timeouts {total(final, 'timeouts')}, send skipped {total(final, 'send_skipped')}, "
        f"protocol errors {total(final, 'protocol_errors')} (client) / "
        f"{total(server_final, 'protocol_errors')} (server), "
        f"overload {total(server_final, 'overload')}.",
    ]
    windows = [lv for r in runs for lv in r["levels"]]
    per_core = {key: [lv[key] / lv["window_s"] for lv in windows]
                for key in ("softirq_s", "ours_cpu_s", "foreign_cpu_s")}
    retried = sum(len(lv.get("discarded_windows", [])) for lv in windows)
    lines.append(
        "Machine during the windows (share of one core, median/max): softirq (kernel loopback "
        "work charged to neither worker) "
        f"{median(per_core['softirq_s']):.0%}/{max(per_core['softirq_s']):.0%}; nodes and this "
        f"script {median(per_core['ours_cpu_s']):.0%}/{max(per_core['ours_cpu_s']):.0%}; other "
        f"processes {median(per_core['foreign_cpu_s']):.0%}/"
        f"{max(per_core['foreign_cpu_s']):.0%} ({retried} busy or stalled window(s) "
        "re-measured). "
        "psutil CPU times tick at 10 ms: each reading is within "
        f"±{2 * 0.01 * 1e6 / (min(settings.qps_levels) * settings.window):.0f} µs/request at "
        f"{min(settings.qps_levels):,} qps, less at higher rates."
    )
    kept = Counter(f"{lv['target_qps']:,}" for lv in windows if lv.get("problem"))
    if kept:
        levels = ", ".join(f"{qps} qps x{count}" for qps, count in sorted(
            kept.items(), key=lambda item: int(item[0].replace(",", ""))))
        lines.append(f"WARNING: {sum(kept.values())} kept window(s) were still busy or stalled "
                     f"after the retry ({levels}; details in --json); their figures include "
                     "contention.")
    if failures:
        lines.append(f"WARNING: {len(failures)} run(s) failed and are left out of the medians: "
                     + "; ".join(failures))
    if warnings:
        lines.append(f"WARNING: node logs had {len(warnings)} warning/error lines (run "
                     f"directory kept): {summarise_warnings(warnings)}")
    else:
        lines.append("Node logs: no warnings or errors.")
    return lines


HEADERS = ["Metric", "Ours (median)", "Runs min-max", "Achieved (median)", "Go original",
           "Target", "Result"]


def print_table(rows: list[list[str]], notes: list[str], title: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print_plain(rows, notes, title)
        return
    table = Table(title=title, caption="\n".join(notes), caption_justify="left")
    for index, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if index == 0 else "right")
    for row in rows:
        if not row:
            table.add_section()
            continue
        result = row[-1]
        style = {"PASS": "green", "MISS": "red", "info": "dim"}.get(result, "")
        table.add_row(*row[:-1], f"[{style}]{result}[/]" if style else result)
    Console(width=max(150, shutil.get_terminal_size().columns)).print(table)


def print_plain(rows: list[list[str]], notes: list[str], title: str) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows if r)) for i, h in enumerate(HEADERS)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    print(title)
    print(line(HEADERS))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row) if row else "")
    print()
    for note in notes:
        print(f"* {note}")


def log_warnings(run_dir: Path) -> list[str]:
    """The nodes' WARNING and ERROR log lines, each with the exception that ends its
    traceback (if one follows), without timestamps."""
    found = []
    for path in sorted((run_dir / "logs").glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        for index, text in enumerate(lines):
            if " WARNING " not in text and " ERROR " not in text:
                continue
            message = text.split(" ", 2)[-1].strip()  # drop the date and time
            # asyncio/uvloop put "protocol: ..." and "transport: ..." lines first
            start = next((i for i in range(index + 1, min(index + 5, len(lines)))
                          if lines[i].startswith("Traceback")), None)
            if start is not None:
                for follow in lines[start + 1:]:
                    if not follow.startswith(" "):
                        message += f" [{follow.strip()}]"
                        break
            found.append(f"{path.stem}: {message}")
    return found


def summarise_warnings(warnings: list[str], top: int = 3) -> str:
    counts = Counter(warnings)
    return "; ".join(f"{count}x {text}" for text, count in counts.most_common(top))


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh runs to take medians over")
    parser.add_argument("--connections", type=int, default=19000)
    parser.add_argument("--qps-levels", default="1000,5000,10000,19000",
                        help="comma-separated shake rates")
    parser.add_argument("--window", type=int, default=5, help="seconds measured per level")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds at a new rate before measuring")
    parser.add_argument("--idle-settle", type=float, default=3.0,
                        help="seconds after all logins before reading idle RSS")
    parser.add_argument("--connect-rate", type=float, default=5000.0, help="connects/s")
    parser.add_argument("--source-ips", default="127.0.0.2-127.0.0.3")
    parser.add_argument("--shake-rate", type=float, default=0.0,
                        help="server shake-packet generator rate during the load (0 = off)")
    parser.add_argument("--busy-retries", type=int, default=1,
                        help="re-measure a window this many times (at most "
                             f"{MAX_RETRIES_PER_RUN} per run) while other processes "
                             f"use more than {BUSY_MACHINE:.0%}% of a core")
    parser.add_argument("--json", type=Path, help="save the raw per-run numbers here")
    parser.add_argument("--keep-run-dir", action="store_true",
                        help="keep the temporary run directory (logs, metrics, ledgers)")
    parser.add_argument("--profile", action="store_true",
                        help="after the last run's windows, py-spy both workers")
    parser.add_argument("--profile-qps", type=int, default=10000)
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument("--native", action=argparse.BooleanOptionalAction, default=True,
                        help="py-spy C frames too (uvloop, libc); pauses the workers per sample")
    parser.add_argument("--profile-dir", type=Path,
                        help="where py-spy raw output goes (default: in the run directory)")
    args = parser.parse_args(argv)
    try:
        levels = [int(x) for x in args.qps_levels.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--qps-levels: expected comma-separated integers, got {args.qps_levels!r}")
    if args.runs < 1 or args.window < 1 or not levels or min(levels) < 1:
        parser.error("--runs, --window and every --qps-levels entry must be >= 1")
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if args.connections < 1 or args.connections > hard - FD_RESERVE:
        parser.error(f"--connections must be 1..{hard - FD_RESERVE} (one worker per side "
                     f"under the open-files limit {hard})")
    settings = Settings(
        connections=args.connections, qps_levels=levels, window=args.window,
        settle=args.settle, idle_settle=args.idle_settle, connect_rate=args.connect_rate,
        source_ips=args.source_ips, shake_rate=args.shake_rate, profile=args.profile,
        profile_qps=args.profile_qps, profile_seconds=args.profile_seconds,
        profile_dir=args.profile_dir, profile_native=args.native,
        busy_retries=args.busy_retries,
    )
    return args, settings


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base_dir = Path(tempfile.mkdtemp(prefix="hongbao-bench-"))
    runs: list[dict[str, Any]] = []
    warnings: list[str] = []
    failures: list[str] = []
    failed = True
    started = time.monotonic()
    try:
        for index in range(args.runs):
            run_dir = base_dir / f"run{index + 1}"
            log(f"run {index + 1}/{args.runs} ({run_dir})")
            bench = BenchRun(settings, run_dir, index + 1)
            try:
                settings.profile = args.profile and index == args.runs - 1
                runs.append(bench.measure())
            except RuntimeError as error:
                log(f"  run {index + 1} failed: {error}")
                failures.append(f"run {index + 1}: {error}")
            finally:
                codes = bench.stop()
                if any(code not in (0, None) for code in codes):
                    log(f"  nodes exited with {codes}")
            warnings.extend(log_warnings(run_dir))
        if not runs:
            raise RuntimeError("every run failed")
        failed = bool(failures)
    except KeyboardInterrupt:
        log("interrupted; processes stopped")
        return 130
    except RuntimeError as error:
        log(f"error: {error}")
        return 1
    finally:
        if failed or warnings or args.keep_run_dir:
            log(f"run directory kept: {base_dir}")
        else:
            shutil.rmtree(base_dir, ignore_errors=True)
    elapsed = time.monotonic() - started
    if args.json:
        args.json.write_text(json.dumps({"settings": {**vars(args), "json": str(args.json),
                                                      "profile_dir": str(args.profile_dir)},
                                         "runs": runs, "log_warnings": warnings},
                                        indent=1, default=str))
    title = (f"hongbao server and client cost at {settings.connections:,} connections "
             f"({len(runs)} run{'s' if len(runs) != 1 else ''}, {elapsed:.0f} s)")
    print_table(build_rows(runs, settings.qps_levels),
                footer(runs, settings, warnings, failures), title)
    for run in runs:
        for name, prof in run.get("profile", {}).items():
            if isinstance(prof, dict):
                print_profile(name, prof, settings.profile_qps)
    return 1 if failures else 0


def print_profile(name: str, prof: dict[str, Any], qps: int) -> None:
    print(f"\npy-spy {name} worker at {qps:,} qps target: {prof['samples']} samples, of "
          f"which {prof['idle_samples']} wait in epoll (left out; % below are of the other "
          f"{prof['samples'] - prof['idle_samples']}); raw stacks in {prof['raw']}")
    print("  self % (leaf frame)")
    for frame, pct in prof["self_pct"]:
        print(f"    {pct:5.1f}  {frame}")
    print(f"  total % (frame anywhere on the stack; frames in >= {INCLUSIVE_CUTOFF:g}% hidden)")
    for frame, pct in prof["total_pct"]:
        print(f"    {pct:5.1f}  {frame}")


if __name__ == "__main__":
    sys.exit(main())
