"""Phase 1 progress for the play: one line per round, and the client hosts that stall.

``hongbao connect-progress`` reads the nodes' ``/status`` documents (a JSON object, host ->
status, on stdin), compares them with the previous round kept in a state file, and prints
one JSON object: ``done``, ``timed_out``, ``stalled`` (host names) and ``line``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hongbao import flags

STALL_AFTER_S = 30.0  # a client host whose logins have not moved for this long stalls


@dataclass(frozen=True)
class ClientView:
    host: str
    logged_in: int
    users: int
    connecting: int
    connect_errors: int

    @classmethod
    def from_status(cls, host: str, status: dict[str, Any]) -> ClientView:
        counters = status.get("counters", {})
        return cls(host, int(counters.get("logged_in", 0)), int(status.get("users", 0)),
                   int(status.get("connecting", 0)), int(counters.get("connect_errors", 0)))

    @property
    def complete(self) -> bool:
        return self.logged_in >= self.users


def connect_progress(statuses: dict[str, dict[str, Any]], server: str, target: int,
                     state: dict[str, Any], now: float, timeout_s: float) -> dict[str, Any]:
    """This round's verdict; ``state`` (the previous round's, or empty) is updated in place."""
    started = state.setdefault("started", now)
    seen = state.setdefault("clients", {})
    held = int(statuses.get(server, {}).get("counters", {}).get("connections", 0))
    clients = [ClientView.from_status(host, status)
               for host, status in statuses.items() if host != server]
    stalled = []
    for client in clients:
        previous = seen.get(client.host, {"logged_in": -1, "since": now})
        since = now if client.logged_in != previous["logged_in"] else previous["since"]
        seen[client.host] = {"logged_in": client.logged_in, "since": since}
        if not client.complete and now - since >= STALL_AFTER_S:
            stalled.append(client)
    elapsed = now - started
    rate = held / elapsed if elapsed > 0 else 0.0
    logged_in = sum(client.logged_in for client in clients)
    done = held >= target and all(client.complete for client in clients)
    line = (f"phase1 {elapsed:4.0f} s: server holds {held:,}/{target:,} connections "
            f"({rate:,.0f}/s); clients logged in {logged_in:,}, connecting "
            f"{sum(c.connecting for c in clients):,}, connect errors "
            f"{sum(c.connect_errors for c in clients):,}")
    if stalled:
        line += "; stalled: " + ", ".join(
            f"{c.host} ({c.logged_in:,}/{c.users:,} logged in, no progress for "
            f"{now - seen[c.host]['since']:.0f} s, connect errors {c.connect_errors:,})"
            for c in stalled)
    return {"done": done, "timed_out": not done and elapsed >= timeout_s,
            "stalled": [c.host for c in stalled], "line": line}


def _run(args: argparse.Namespace) -> int:
    if args.begin:  # phase 1 starts now: rates and the timeout count from here
        args.state.parent.mkdir(parents=True, exist_ok=True)
        args.state.write_text(json.dumps({"started": time.time()}))
        return 0
    missing = [flag for flag, value in (("--server", args.server), ("--target", args.target),
                                        ("--timeout", args.timeout)) if value is None]
    if missing:
        raise flags.UsageError(f"connect-progress needs {', '.join(missing)} (or --begin)")
    try:
        statuses = json.load(sys.stdin)
    except json.JSONDecodeError as error:
        raise flags.UsageError(f"stdin is not a JSON object of host -> status: {error}") from None
    state = json.loads(args.state.read_text()) if args.state.exists() else {}
    verdict = connect_progress(statuses, args.server, args.target, state, time.time(),
                               args.timeout)
    args.state.parent.mkdir(parents=True, exist_ok=True)
    args.state.write_text(json.dumps(state))
    print(json.dumps(verdict))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "connect-progress", help="phase 1 progress from the nodes' statuses (stdin: JSON)")
    parser.add_argument("--begin", action="store_true",
                        help="phase 1 starts now: forget earlier rounds and count the rate "
                             "and the timeout from here (reads no stdin)")
    parser.add_argument("--server", help="the server's host name in the JSON")
    parser.add_argument("--target", type=flags.count(1), help="connections the server must hold")
    parser.add_argument("--state", type=Path, required=True,
                        help="file that keeps the previous round (created if missing)")
    parser.add_argument("--timeout", type=flags.positive,
                        help="seconds since --begin (or the first round) before phase 1 "
                             "times out")
    parser.set_defaults(func=_run)
