"""Processes the lab started: is one alive, and stop a few of them by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

STOP_GRACE_S = 2.0
_POLL_S = 0.02


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie nobody reaped counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if text in command_line(pid) and pid_alive(pid)]


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def terminate(pids: Iterable[int], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM ``pids``, then SIGKILL whichever still runs after ``grace_s``."""
    remaining = _wait_for_exit({pid for pid in pids if pid_alive(pid)}, signal.SIGTERM, grace_s)
    _wait_for_exit(remaining, signal.SIGKILL, grace_s)


def _wait_for_exit(pids: set[int], signum: signal.Signals, timeout_s: float) -> set[int]:
    """Send ``signum`` to ``pids``; those still running after ``timeout_s``."""
    _signal_all(pids, signum)
    deadline = time.monotonic() + timeout_s
    while pids and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        pids = {pid for pid in pids if pid_alive(pid)}
    return pids


def _signal_all(pids: Iterable[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
