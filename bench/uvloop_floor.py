#!/usr/bin/env python3
"""What does an idle connection cost in memory with uvloop's transport, and with the
workers' own (``hongbao.node.epoll_transport``), before any other hongbao code?

Each run is a fresh process: a bare uvloop server with a slotted protocol (a transport and
one more field) takes ``--connections`` plain sockets from a helper process, through
uvloop's transport or through an ``EpollTransports``. The server's RSS growth over its
connections is the floor per connection (the transport, uvloop's libuv handle, the
protocol object), which the workers' per-connection figure of
``memory_per_connection.py`` can be compared with. Runs alternate between the two.

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

from hongbao.node.epoll_transport import EpollTransports

KB = 1024
TRANSPORTS = ("uvloop", "epoll")
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


class EpollServer:
    """A listener whose accepted sockets go to an EpollTransports, as a server worker's do."""

    def __init__(self, held: list[Idle]) -> None:
        self.transports = EpollTransports()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.listener.setblocking(False)
        loop = asyncio.get_running_loop()
        self.transports.start(loop)
        loop.add_reader(self.listener.fileno(), self._accept, held)

    def _accept(self, held: list[Idle]) -> None:
        while True:
            try:
                sock, _address = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            self.transports.adopt(sock, Idle(held))

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.listener.fileno())
        self.listener.close()
        self.transports.close()


async def one_run(connections: int, transport: str) -> float:
    """Bytes of server RSS per connection, from a fresh listener and a fresh helper."""
    held: list[Idle] = []
    if transport == "epoll":
        epoll_server = EpollServer(held)
        port = epoll_server.listener.getsockname()[1]
    else:
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
    if transport == "epoll":
        epoll_server.close()
    else:
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
    parser.add_argument("--one-run", choices=TRANSPORTS, help=argparse.SUPPRESS)
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
        print(uvloop.run(one_run(args.connections, args.one_run)))
        return 0
    per_run: dict[str, list[float]] = {transport: [] for transport in TRANSPORTS}
    for _ in range(args.runs):
        for transport in TRANSPORTS:
            run = subprocess.run([sys.executable, __file__, "--one-run", transport,
                                  "--connections", str(args.connections)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                last = (run.stderr.strip().splitlines() or ["no message"])[-1]
                print(f"uvloop_floor.py: a {transport} run failed (exit {run.returncode}): "
                      f"{last}", file=sys.stderr)
                return 1
            per_run[transport].append(float(run.stdout))
    print(f"uvloop {uvloop.__version__}, a slotted protocol, {args.connections:,} idle "
          f"connections on 127.0.0.1, bytes of server RSS per connection (median of "
          f"{args.runs}):")
    for transport, figures in per_run.items():
        print(f"  {transport:7} {statistics.median(figures):,.0f} (runs: "
              f"{', '.join(f'{b:,.0f}' for b in figures)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
