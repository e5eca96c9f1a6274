#!/usr/bin/env python3
"""What latency does a light load see when as many processes share the box as at 1M?

At 1,000,000 connections the lab runs 51 server workers, 51 client workers and 18 nodes
on 2 cores, and even 1,875 QPS saw p99 > 100 ms. This runs ``hongbao local-run`` on
loopback with that many server workers and client nodes but few connections (loopback
has ~28k source ports), so the fixed per-process and per-second costs show without the
connection count. ``--compare DIR`` also runs another checkout's ``app`` directory (say a
``git worktree`` of an older commit), interleaved with this one run by run, and gives the
ratio of their median p99s.

    .venv/bin/python bench/many_processes.py [--runs 3] [--users 25000] [--clients 17]
        [--server-workers 51] [--qps 1875,3750] [--phase-seconds 30] [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import figure, log, median, print_table, whole_numbers

HERE_APP = Path(__file__).resolve().parent.parent / "app"
LOAD_PHASES = ("phase2", "phase3")


def one_run(app: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One local-run with ``app`` first on the path; its load phases from summary.json."""
    with tempfile.TemporaryDirectory(prefix="hongbao-many-") as tmp:
        run_dir = Path(tmp) / "run"
        command = [sys.executable, "-c", "import sys; from hongbao.cli import main; "
                   "sys.exit(main(sys.argv[1:]))", "local-run", "--run-id", "many",
                   "--run-dir", str(run_dir), "--users", str(args.users),
                   "--clients", str(args.clients), "--server-workers", str(args.server_workers),
                   "--phase-seconds", str(args.phase_seconds),
                   "--phase2-qps", str(args.qps[0]), "--phase3-qps", str(args.qps[1])]
        env = {**os.environ, "PYTHONPATH": str(app)}
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=args.phase_seconds * 8 + 600)
        summary_path = run_dir / "report" / "summary.json"
        if not summary_path.exists():
            raise RuntimeError(f"local-run with {app} wrote no summary (exit "
                               f"{done.returncode}): {done.stderr.strip()[-300:]}")
        phases = json.loads(summary_path.read_text())["phases"]
        return {phase["name"]: phase for phase in phases if phase["name"] in LOAD_PHASES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=25_000)
    parser.add_argument("--clients", type=int, default=17, help="client nodes")
    parser.add_argument("--server-workers", type=int, default=51)
    parser.add_argument("--qps", type=whole_numbers, default=[1875, 3750],
                        help="phase 2 and phase 3 QPS, comma-separated")
    parser.add_argument("--phase-seconds", type=int, default=30)
    parser.add_argument("--compare", type=Path, help="another checkout's app directory")
    parser.add_argument("--json", type=Path, help="save every run's phases here")
    args = parser.parse_args(argv)
    if len(args.qps) != 2 or args.runs < 1 or args.users < 1:
        parser.error("--qps takes two rates; --runs and --users must be >= 1")
    if args.users > 28_000:
        parser.error("--users over 28,000 do not fit loopback's source ports")
    if args.compare is not None and not (args.compare / "hongbao").is_dir():
        parser.error(f"--compare {args.compare}: no hongbao package there")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apps = {"this": HERE_APP, **({"compared": args.compare} if args.compare else {})}
    runs: dict[str, list[dict[str, dict[str, Any]]]] = {name: [] for name in apps}
    try:
        for index in range(args.runs):
            for name, app in apps.items():  # interleaved: drift on the box hits both
                log(f"run {index + 1}/{args.runs}: {name} ({app})")
                runs[name].append(one_run(app, args))
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        log(f"error: {error}")
        return 1
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args), "runs": runs}, indent=1,
                                        default=str))  # the paths among the settings
    rows = []
    for phase in LOAD_PHASES:
        for name in apps:
            values = {key: [run[phase][key] for run in runs[name]]
                      for key in ("held_qps", "p50_ms", "p99_ms", "p999_ms")}
            rows.append([phase, name, figure(values["held_qps"], 0), figure(values["p50_ms"], 2),
                         figure(values["p99_ms"]), figure(values["p999_ms"])])
    notes = [f"{args.users:,} users, {args.clients} client nodes, {args.server_workers} server "
             f"workers, {args.phase_seconds} s phases; median (min-max) over {args.runs} runs"]
    if args.compare:
        for phase in LOAD_PHASES:
            ours, theirs = (median([run[phase]["p99_ms"] for run in runs[name]]) for name in apps)
            notes.append(f"{phase}: median p99 this / compared = {ours / theirs:.2f}")
    print_table(["phase", "code", "held QPS", "p50 ms", "p99 ms", "p99.9 ms"], rows, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
