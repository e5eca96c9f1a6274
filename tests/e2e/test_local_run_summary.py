"""A real small ``hongbao local-run`` writes report/summary.json, and its percentiles are
those of the workers' .hlog files merged with the hdrhistogram package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from hongbao.metrics.pointfile import read_points

USERS = 400
PHASE_SECONDS = 4
QPS = {"phase2": 200, "phase3": 400}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    run_dir = tmp_path_factory.mktemp("summary") / "run"
    result = subprocess.run(
        [sys.executable, "-m", "hongbao.cli", "local-run", "--run-id", "summary-run",
         "--run-dir", str(run_dir), "--users", str(USERS), "--clients", "2",
         "--server-workers", "1", "--phase-seconds", str(PHASE_SECONDS),
         "--phase2-qps", str(QPS["phase2"]), "--phase3-qps", str(QPS["phase3"])],
        capture_output=True, text=True, timeout=180)
    return {"run_dir": run_dir, "result": result,
            "summary": json.loads((run_dir / "report" / "summary.json").read_text())}


def hold_window(run_dir: Path, phase: str) -> range:
    marks = {p.fields["event"]: p.time for p in read_points(
        run_dir / "metrics" / "phase-controller.lp") if p.tags["phase"] == phase}
    return range(marks["hold_start"], marks["hold_end"])


def test_local_run_writes_a_summary_that_adds_up(local_run: dict) -> None:
    assert local_run["result"].returncode == 0, local_run["result"].stdout[-3000:]
    summary = local_run["summary"]
    assert summary["run_id"] == "summary-run" and summary["scale"] is None
    assert summary["knee"] is None
    memory = summary["memory"]  # nodes and workers, all counted, per connection held
    for role in ("server", "client"):
        assert 0 < memory[f"{role}_kb_per_connection"] < 1024 * 1024
        assert memory[f"{role}_rss_mb"] > 20  # at least a node and a worker
    phase1, phase2, phase3 = summary["phases"]
    assert [phase1["name"], phase2["name"], phase3["name"]] == ["phase1", "phase2", "phase3"]
    assert phase1["target_connections"] == phase1["connections"] == USERS
    assert 0 < phase1["connect_seconds"] <= phase1["hold_seconds"]
    for phase in (phase2, phase3):
        assert phase["target_qps"] == QPS[phase["name"]]
        assert phase["hold_seconds"] in (PHASE_SECONDS - 1, PHASE_SECONDS)
        assert phase["held_qps"] == pytest.approx(phase["target_qps"], rel=0.005)
        assert 0 < phase["p50_ms"] <= phase["p99_ms"] <= phase["p999_ms"]
        assert phase["timeouts"] == 0
        assert (phase["status"] == "held") == (phase["limit"] is None)
    balance = summary["balance"]
    assert balance["ok"] is True and balance["generated"] > 0
    assert balance["generated"] == balance["won"] + balance["queued"]
    assert balance["sent"] == balance["claimed"] + balance["unclaimed"]
    assert "status: held, or saturated" in local_run["result"].stdout  # the legend


def test_merging_the_hlog_files_gives_the_summarys_p99(local_run: dict) -> None:
    run_dir = local_run["run_dir"]
    logs = sorted((run_dir / "latency").glob("*.hlog"))
    assert [p.name for p in logs] == ["client01-w0.hlog", "client02-w0.hlog"]
    for phase in local_run["summary"]["phases"][1:]:
        window = hold_window(run_dir, phase["name"])
        merged = HdrHistogram(1, 60_000_000, 3)
        for path in logs:
            reader = HistogramLogReader(str(path), HdrHistogram(1, 60_000_000, 3))
            while (interval := reader.get_next_interval_histogram()) is not None:
                if round(interval.get_start_time_stamp() / 1000) in window:
                    merged.add(interval)
        assert merged.get_total_count() > 0
        assert merged.get_value_at_percentile(99) / 1000 == phase["p99_ms"]
