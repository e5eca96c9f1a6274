"""The live monitor follows a run directory as it grows and exits cleanly on Ctrl-C."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from hongbao.metrics.emitter import PerSecondEmitter
from hongbao.metrics.pointfile import PointFile


def emitters(run_dir: Path) -> tuple[PerSecondEmitter, PerSecondEmitter]:
    tags = {"host": "h1", "worker": "0", "run_id": "r1", "phase": "phase2"}
    return (PerSecondEmitter(PointFile(run_dir, "server-h1-w0"), "server", tags,
                             frozenset({"connections"})),
            PerSecondEmitter(PointFile(run_dir, "client-h1-w0"), "client", tags,
                             frozenset({"connections"})))


def first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The process's first line of output, once it has written it."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return process.stdout.readline().decode()


def test_monitor_follows_a_growing_run_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    server, client = emitters(tmp_path)
    start = int(time.time()) - 100
    server.emit(start, {"connections": 40, "requests": 0, "generated_amount": 0,
                        "won_amount": 0})
    monitor = subprocess.Popen(
        [sys.executable, "-m", "hongbao.cli", "monitor", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "160"})
    try:
        # Ctrl-C once it follows, not at a fixed time: in a CI run under load the monitor
        # got it before it said so, and ran on without a word.
        assert first_line(monitor, 60) == f"following {tmp_path / 'metrics'}; Ctrl-C stops\n"
        for i in range(1, 4):
            server.emit(start + i, {"connections": 40, "requests": 100 * i,
                                    "generated_amount": 500 * i, "won_amount": 400 * i})
            client.emit(start + i, {"connections": 40, "requests": 100 * i,
                                    "responses": 100 * i}, {"lat_p99_us": 1500})
            time.sleep(1.1)
        monitor.send_signal(signal.SIGINT)
        output, _ = monitor.communicate(timeout=10)
    finally:
        if monitor.poll() is None:
            monitor.kill()
    text = output.decode()
    assert monitor.returncode == 0, text
    assert "monitor stopped" in text
    assert "Traceback" not in text
    assert "300 / 300 / 300" in text  # requests: client sent / server got / answered
    assert "1,500 = 1,200 + 300" in text  # generated = won + queued (cumulative in)


def test_monitor_without_a_run_directory_says_what_to_give(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "hongbao.cli", "monitor", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "has no metrics/ directory" in result.stderr
