"""The node benchmarks run end to end at a tiny scale and report real figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "raw.json"
    done = subprocess.run([sys.executable, str(BENCH / script), "--runs", "1", *args,
                           "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| " in done.stdout, done.stdout  # the table was printed
    return json.loads(out.read_text())


def test_connect_rate_logs_every_user_in_and_reports_a_positive_time(tmp_path: Path) -> None:
    raw = run_bench("connect_rate.py", tmp_path, "--users", "200", "--workers", "1")
    [run] = raw["runs"]
    assert run["seconds"] > run["start_up_seconds"] > 0
    assert 0 < run["busiest_second"] <= 200


def test_cpu_per_request_counts_requests_and_cpu_on_both_sides(tmp_path: Path) -> None:
    raw = run_bench("cpu_per_request.py", tmp_path, "--connections", "200",
                    "--qps-levels", "400", "--window", "1", "--settle", "0.5")
    [[idle, loaded]] = raw["runs"]
    assert idle["target_qps"] == 0 and idle["server_requests"] == 0
    assert loaded["server_requests"] > 0 and loaded["client_requests"] > 0
    assert loaded["server_worker_cpu"] > 0 and loaded["client_worker_cpu"] > 0
