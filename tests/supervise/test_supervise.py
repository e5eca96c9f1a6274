"""The lab's stand-in for systemd: idempotent start, restart on crash, draining stop."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.e2e.nodes import wait_for

HONGBAO = [sys.executable, "-m", "hongbao.cli", "supervise"]


def supervise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HONGBAO, *args], capture_output=True, text=True, timeout=90)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_start_twice_runs_one_daemon_and_stop_lets_it_finish(tmp_path: Path) -> None:
    pid_file, marker = tmp_path / "d.pid", tmp_path / "terminated"
    ready = tmp_path / "ready"
    program = ("import signal, sys, time, pathlib\n"
               f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r})"
               ".write_text('drained'), sys.exit(0)))\n"
               f"pathlib.Path({str(ready)!r}).write_text('ready')\n"
               "time.sleep(120)\n")
    first = supervise("start", "--pid-file", str(pid_file), "--log-file",
                      str(tmp_path / "d.log"), "--", sys.executable, "-c", program)
    assert first.returncode == 0 and "started (pid" in first.stdout
    second = supervise("start", "--pid-file", str(pid_file), "--log-file",
                       str(tmp_path / "d.log"), "--", sys.executable, "-c", program)
    assert "already running" in second.stdout
    # Every host runs a supervisor: it loads its own module, not the CLI's event loop and
    # HTTP stacks (about 13 MB against 42 MB resident).
    maps = Path(f"/proc/{pid_file.read_text().split()[0]}/maps").read_text()
    assert "uvloop" not in maps and "aiohttp" not in maps
    assert supervise("status", "--pid-file", str(pid_file)).returncode == 0
    wait_for(ready.exists, 20, "the program's SIGTERM handler")
    stopped = supervise("stop", "--pid-file", str(pid_file), "--timeout", "20")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert marker.read_text() == "drained"
    assert not pid_file.exists()
    assert supervise("status", "--pid-file", str(pid_file)).returncode == 3


def test_a_crashing_program_is_restarted_then_given_up_on(tmp_path: Path) -> None:
    pid_file, starts = tmp_path / "c.pid", tmp_path / "starts"
    program = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(1)"
    supervise("start", "--pid-file", str(pid_file), "--log-file", str(tmp_path / "c.log"),
              "--restart-limit", "2", "--", sys.executable, "-c", program)
    wait_for(lambda: not pid_file.exists(), 20, "the supervisor to give up")
    assert starts.read_text() == "xxx"  # the first start and two restarts
    assert "gave up after 2 restarts" in (tmp_path / "c.log").read_text()


def test_a_changed_command_restarts_the_daemon(tmp_path: Path) -> None:
    pid_file = tmp_path / "r.pid"
    first = supervise("start", "--pid-file", str(pid_file), "--", "sleep", "60")
    old_pid = int(pid_file.read_text())
    same = supervise("start", "--pid-file", str(pid_file), "--", "sleep", "60")
    assert "already running" in same.stdout and int(pid_file.read_text()) == old_pid
    changed = supervise("start", "--pid-file", str(pid_file), "--", "sleep", "61")
    assert first.returncode == changed.returncode == 0
    assert "the command changed: restarting" in changed.stdout
    assert int(pid_file.read_text()) != old_pid
    new_pid = int(pid_file.read_text())
    forced = supervise("start", "--pid-file", str(pid_file), "--restart", "--", "sleep", "61")
    assert forced.returncode == 0 and "restarting" in forced.stdout
    assert int(pid_file.read_text()) not in (old_pid, new_pid)
    assert supervise("stop", "--pid-file", str(pid_file)).returncode == 0


def test_the_daemon_runs_in_its_home_which_start_creates(tmp_path: Path) -> None:
    home, pid_file, seen = tmp_path / "new" / "home", tmp_path / "h.pid", tmp_path / "cwd"
    program = (f"import os, pathlib, time; pathlib.Path({str(seen)!r}).write_text(os.getcwd())"
               "; time.sleep(60)")
    started = supervise("start", "--pid-file", str(pid_file), "--home", str(home), "--",
                        sys.executable, "-c", program)
    assert started.returncode == 0, started.stderr
    wait_for(lambda: seen.exists() and seen.read_text() != "", 20,
             "the program to write its working directory")
    assert seen.read_text() == str(home)
    assert supervise("stop", "--pid-file", str(pid_file)).returncode == 0


def _status_server(port: int, flag: Path, served: Path) -> str:
    """A program answering GET /status with {"ready": whether ``flag`` exists}, noting each
    request in ``served``."""
    return ("import http.server, json, pathlib\n"
            "class Status(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            f"        pathlib.Path({str(served)!r}).write_text('yes')\n"
            f"        body = json.dumps({{'ready': pathlib.Path({str(flag)!r}).exists()}})\n"
            "        self.send_response(200); self.end_headers()\n"
            "        self.wfile.write(body.encode())\n"
            f"http.server.HTTPServer(('127.0.0.1', {port}), Status).serve_forever()\n")


def test_start_returns_once_the_daemon_says_it_is_ready(tmp_path: Path) -> None:
    port, flag, served = free_port(), tmp_path / "ready", tmp_path / "served"
    pid_file = tmp_path / "s.pid"
    starting = subprocess.Popen(
        [*HONGBAO, "start", "--pid-file", str(pid_file), "--ready-url",
         f"http://127.0.0.1:{port}/status", "--ready-timeout", "60", "--",
         sys.executable, "-c", _status_server(port, flag, served)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(served.exists, 30, "the daemon to answer /status")
        assert starting.poll() is None  # it answered "not ready": start still waits
        flag.write_text("go")
        out, err = starting.communicate(timeout=30)
        assert starting.returncode == 0, err
        assert f"ready (http://127.0.0.1:{port}/status)" in out
    finally:
        starting.kill()
        supervise("stop", "--pid-file", str(pid_file))


def test_start_fails_in_one_line_when_the_daemon_is_not_ready_in_time(tmp_path: Path) -> None:
    port, pid_file = free_port(), tmp_path / "n.pid"
    late = supervise("start", "--pid-file", str(pid_file), "--log-file", str(tmp_path / "n.log"),
                     "--ready-url", f"http://127.0.0.1:{port}/status", "--ready-timeout", "2",
                     "--", sys.executable, "-c",
                     _status_server(port, tmp_path / "never", tmp_path / "served"))
    assert late.returncode == 1
    assert late.stderr.strip().splitlines() == [
        f"not ready within 2 s (http://127.0.0.1:{port}/status: answers, not ready yet); "
        f"see {tmp_path / 'n.log'}"]
    assert supervise("stop", "--pid-file", str(pid_file)).returncode == 0
    gone = supervise("start", "--pid-file", str(tmp_path / "g.pid"), "--restart-limit", "0",
                     "--ready-url", f"http://127.0.0.1:{port}/status", "--",
                     sys.executable, "-c", "raise SystemExit(1)")
    assert gone.returncode == 1
    assert "the daemon exited before it was ready" in gone.stderr
