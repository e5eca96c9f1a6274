"""``hongbao supervise``: run a node as a supervised daemon with a pid file, where there
is no systemd (the local lab). Starting twice is a no-op, a crash is restarted with
backoff, SIGTERM is passed on so the node drains, and ``stop`` waits for the drain."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hongbao import flags
from hongbao.backoff import capped_exponential

RESTART_BACKOFF_FIRST = 1.0
RESTART_BACKOFF_MAX = 30.0
EXIT_NOT_RUNNING = 3  # like LSB 'status': program is not running
READY_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Readiness:
    """Where the daemon says it is ready (a node's control API ``/status``, whose JSON has
    ``ready``), and how long to wait for it."""

    url: str
    timeout: float


def running_pid(pid_file: Path) -> int | None:
    """The supervisor's pid if the pid file names a live supervisor, else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"supervise" in cmdline else None


def _supervise(command: list[str], pid_file: Path, restart_limit: int) -> int:
    """Runs in the daemon: keep ``command`` running until SIGTERM."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    restarts = 0
    code = 0
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(command)
            print(f"supervise: started pid {child.pid}: {' '.join(command)}", flush=True)
            code = child.wait()
            if stopping:
                print(f"supervise: stopped, exit code {code}", flush=True)
                return code
            if time.monotonic() - started > 60:
                restarts = 0  # it ran a good while: start counting afresh
            restarts += 1
            if restarts > restart_limit:
                print(f"supervise: exited with {code}; gave up after {restart_limit} restarts",
                      flush=True)
                return code or 1
            delay = capped_exponential(restarts, RESTART_BACKOFF_FIRST, RESTART_BACKOFF_MAX)
            print(f"supervise: exited with {code}; restart {restarts} in {delay:.0f} s",
                  flush=True)
            time.sleep(delay)
    finally:
        pid_file.unlink(missing_ok=True)


def _command_file(pid_file: Path) -> Path:
    return pid_file.with_name(pid_file.name + ".command")


def start(command: list[str], pid_file: Path, log_file: Path, restart_limit: int,
          stop_timeout: float = 60, home: Path | None = None, restart: bool = False,
          ready: Readiness | None = None) -> int:
    """Start unless running. Like a changed systemd unit, a daemon that runs a different
    command (say, another run id) is drained and started again with the new one; with
    ``restart`` (new code installed, say) a running daemon always is. ``home`` is the
    daemon's working directory, created if missing (default: the current one). With
    ``ready``, return once the daemon says it is ready: one command where a play would
    otherwise poll with a module run per try."""
    if not command:
        raise SystemExit("hongbao supervise start: give the command after '--'")
    pid = running_pid(pid_file)
    recorded = _command_file(pid_file)
    wanted = json.dumps(command)
    if pid is not None:
        if restart:
            print(f"restarting (pid {pid})")
        elif not recorded.exists() or recorded.read_text() == wanted:
            print(f"already running (pid {pid})")
            return _await_ready(ready, pid_file, log_file)
        else:
            print(f"the command changed: restarting (pid {pid})")
        if stop(pid_file, stop_timeout) != 0:
            return 1
    for directory in (pid_file.parent, log_file.parent, *([home] if home else [])):
        directory.mkdir(parents=True, exist_ok=True)
    recorded.write_text(wanted)
    daemon = shutil.which("start-stop-daemon")
    if daemon is None:
        raise SystemExit("hongbao supervise start: start-stop-daemon not found "
                         "(Debian's dpkg package provides it)")
    # start-stop-daemon detaches the supervisor, writes its pid file and sends its output to
    # the log; the supervisor ('supervise run') keeps the command running.
    subprocess.run([
        daemon, "--start", "--background", "--make-pidfile", "--pidfile", str(pid_file),
        "--output", str(log_file), *(["--chdir", str(home)] if home else []),
        "--startas", sys.executable, "--",
        "-m", "hongbao.local.daemon", "supervise", "run", "--pid-file", str(pid_file),
        "--restart-limit", str(restart_limit), "--", *command], check=True)
    return _await_pid_file(pid_file, log_file) or _await_ready(ready, pid_file, log_file)


def _await_pid_file(pid_file: Path, log_file: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = running_pid(pid_file)
        if pid is not None:
            print(f"started (pid {pid}), log {log_file}")
            return 0
        time.sleep(0.05)
    print(f"the daemon did not write {pid_file} within {timeout:.0f} s; see {log_file}",
          file=sys.stderr)
    return 1


def _await_ready(ready: Readiness | None, pid_file: Path, log_file: Path) -> int:
    if ready is None:
        return 0
    deadline = time.monotonic() + ready.timeout
    last = "no answer yet"
    while (left := deadline - time.monotonic()) > 0:
        if running_pid(pid_file) is None:
            print(f"the daemon exited before it was ready; see {log_file}", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(ready.url, timeout=min(5.0, left)) as answer:
                if json.load(answer).get("ready"):
                    print(f"ready ({ready.url})")
                    return 0
            last = "answers, not ready yet"
        except (OSError, ValueError) as error:  # refused, timed out, an HTTP error, no JSON
            last = str(error) or type(error).__name__
        time.sleep(min(READY_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    print(f"not ready within {ready.timeout:g} s ({ready.url}: {last}); see {log_file}",
          file=sys.stderr)
    return 1


def stop(pid_file: Path, timeout: float) -> int:
    pid = running_pid(pid_file)
    if pid is None:
        print("not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        print(f"killed (pid {pid}) after {timeout:.0f} s without draining", file=sys.stderr)
        pid_file.unlink(missing_ok=True)
        return 1
    print(f"stopped (pid {pid})")
    return 0


def status(pid_file: Path) -> int:
    pid = running_pid(pid_file)
    print(f"running (pid {pid})" if pid else "not running")
    return 0 if pid else EXIT_NOT_RUNNING


def _command(args: argparse.Namespace) -> list[str]:
    return args.command[1:] if args.command[:1] == ["--"] else args.command


def _start(args: argparse.Namespace) -> int:
    ready = Readiness(args.ready_url, args.ready_timeout) if args.ready_url else None
    return start(_command(args), args.pid_file, args.log_file, args.restart_limit,
                 stop_timeout=args.stop_timeout, home=args.home, restart=args.restart,
                 ready=ready)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("supervise", help="run a node as a daemon with a pid file")
    actions = parser.add_subparsers(dest="action", required=True)
    pid = argparse.ArgumentParser(add_help=False)
    pid.add_argument("--pid-file", type=Path, required=True)

    starting = actions.add_parser("start", parents=[pid], help="start unless running")
    starting.add_argument("--log-file", type=Path, default=Path("/dev/null"))
    starting.add_argument("--home", type=Path,
                          help="the daemon's working directory, created if missing "
                               "(default: the current one)")
    starting.add_argument("--restart", action="store_true",
                          help="drain and start again if running, even with the same command")
    starting.add_argument("--stop-timeout", type=flags.positive, default=60,
                          help="seconds to wait for a drain before a restart (default 60)")
    starting.add_argument("--ready-url",
                          help="return once this URL answers JSON with 'ready' true (a "
                               "node's /status)")
    starting.add_argument("--ready-timeout", type=flags.positive, default=120,
                          help="seconds to wait for --ready-url (default 120)")
    starting.add_argument("--restart-limit", type=flags.count(0), default=5,
                          help="restarts in a row before giving up")
    starting.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    starting.set_defaults(func=_start)

    running = actions.add_parser("run", parents=[pid],
                                 help="the supervisor itself, in the foreground (start runs it "
                                      "under start-stop-daemon)")
    running.add_argument("--restart-limit", type=flags.count(0), default=5)
    running.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    running.set_defaults(func=lambda args: _supervise(_command(args), args.pid_file,
                                                      args.restart_limit))

    stopping = actions.add_parser("stop", parents=[pid], help="SIGTERM and wait for the drain")
    stopping.add_argument("--timeout", type=flags.positive, default=60, help="seconds to wait")
    stopping.set_defaults(func=lambda args: stop(args.pid_file, args.timeout))

    checking = actions.add_parser("status", parents=[pid], help="exit 0 if running, else 3")
    checking.set_defaults(func=lambda args: status(args.pid_file))


def main(argv: list[str] | None = None) -> int:
    """The supervisor's own entry point (``python -m hongbao.local.daemon supervise run``):
    it loads this module alone, about 13 MB resident, where the whole CLI is about 42 MB,
    and every server and client host runs one."""
    parser = flags.OneLineParser(prog="hongbao")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
