#!/usr/bin/env python3
"""What does an idle connection cost in memory with uvloop alone, before any hongbao code?

Each run is a fresh process: a bare uvloop server with a slotted protocol (a transport and
one more field) takes ``--connections`` plain sockets from a helper process. The server's
RSS growth over its connections is uvloop's floor per connection (its transport, the libuv
handle, the protocol object), which the workers' per-connection figure of
``memory_per_connection.py`` can be compared with.

    .venv/bin/python bench/uvloop_floor.py [--runs 3] [--connections 19000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import socket
import statistics
import subprocess
import sys

import uvloop

KB = 1024
OPEN_FILES_SPARE = 100  # the listener, the pipes and the interpreter's own files


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class Idle(asyncio.Protocol):
    __slots__ = ("transport", "user")

    def __init__(self, held: list[Idle]) -> None:
        self.user = 0
        held.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


async def one_run(connections: int) -> float:
    """Bytes of server RSS per connection, from a fresh listener and a fresh helper."""
    held: list[Idle] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: Idle(held), "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    gc.collect()
    before = rss_kb()
    helper = subprocess.Popen([sys.executable, __file__, "--connect", str(port),
                               "--connections", str(connections)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout is not None and helper.stdin is not None
        # Read on a thread: the loop must keep accepting while the helper connects.
        if (await asyncio.to_thread(helper.stdout.readline)).strip() != "connected":
            raise RuntimeError(f"the helper failed (exit {helper.wait()})")
        while len(held) < connections:
            await asyncio.sleep(0.05)
        gc.collect()
        after = rss_kb()
    finally:
        if helper.stdin is not None:
            helper.stdin.close()
        helper.wait(timeout=30)
    server.close()
    for protocol in held:
        protocol.transport.abort()
    await server.wait_closed()
    return (after - before) * KB / connections


def connect(port: int, connections: int) -> None:
    """The helper: open the connections, say so, hold them until stdin closes."""
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    print("connected", flush=True)
    sys.stdin.read()
    for sock in sockets:
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=19_000)
    parser.add_argument("--connect", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.connections + OPEN_FILES_SPARE > hard:
        parser.error(f"--connections {args.connections} does not fit the open-files limit "
                     f"{hard} (less {OPEN_FILES_SPARE} spare)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.connect:
        connect(args.connect, args.connections)
        return 0
    if args.one_run:
        print(uvloop.run(one_run(args.connections)))
        return 0
    per_run = []
    for _ in range(args.runs):
        run = subprocess.run([sys.executable, __file__, "--one-run", "--connections",
                              str(args.connections)], capture_output=True, text=True)
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"uvloop_floor.py: a run failed (exit {run.returncode}): {last}",
                  file=sys.stderr)
            return 1
        per_run.append(float(run.stdout))
    print(f"uvloop {uvloop.__version__}, a slotted protocol, {args.connections:,} idle "
          f"connections on 127.0.0.1: {statistics.median(per_run):,.0f} bytes of server RSS "
          f"per connection (median of {args.runs}; runs: "
          f"{', '.join(f'{b:,.0f}' for b in per_run)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
