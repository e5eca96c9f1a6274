"""Phase 1 completes against a server that accepts slowly: connect timeouts, late accepts,
logins that wait too long and duplicate logins all end with every user logged in once."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from hongbao import protocol as p
from tests.e2e.nodes import start_client, wait_for

USERS = 600
ACCEPT_INTERVAL_S = 0.004  # 250 accepts/s against a client connecting at 4,000/s
BACKLOG = 8


class LoginProtocol(asyncio.Protocol):
    def __init__(self, server: SlowAcceptServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.user: int | None = None
        self.rest = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        frames, self.rest = p.decode_frames(self.rest + data)
        for frame in frames:
            if isinstance(frame, p.Login) and self.transport is not None:
                self.server.login(self, frame.user_id)
                self.transport.write(p.encode_login_ok(frame.user_id, int(time.time())))

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.logout(self)


class SlowAcceptServer:
    """Accepts one connection per ACCEPT_INTERVAL_S through a tiny backlog and answers
    LOGIN with LOGIN_OK; like the real server, a user's newest login replaces the older."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.live: dict[int, LoginProtocol] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.accepting = asyncio.run_coroutine_threadsafe(self._accept_slowly(), self.loop)

    async def _accept_slowly(self) -> None:
        while True:
            connection, _ = await self.loop.sock_accept(self.listener)
            await self.loop.connect_accepted_socket(lambda: LoginProtocol(self), connection)
            await asyncio.sleep(ACCEPT_INTERVAL_S)

    def login(self, protocol: LoginProtocol, user: int) -> None:
        protocol.user = user
        replaced = self.live.get(user)
        self.live[user] = protocol
        if replaced is not None and replaced.transport is not None:
            replaced.transport.abort()

    def logout(self, protocol: LoginProtocol) -> None:
        if protocol.user is not None and self.live.get(protocol.user) is protocol:
            del self.live[protocol.user]

    def logged_in_users(self) -> list[int]:
        async def snapshot() -> list[int]:
            return sorted(self.live)

        return asyncio.run_coroutine_threadsafe(snapshot(), self.loop).result(5)

    def close(self) -> None:
        self.accepting.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.listener.close()


def test_every_user_ends_logged_in_exactly_once_despite_a_slow_accepting_server(
        tmp_path: Path) -> None:
    server = SlowAcceptServer()
    client = start_client(tmp_path, SimpleNamespace(port=server.port), USERS, 2, "client01", 0,
                          "--timeout", "0.3", "--login-wait", "1")
    try:
        wait_for(lambda: server.logged_in_users() == list(range(USERS))
                 and client.counters()["logged_in"] == USERS, 90,
                 "every user logged in on the slow server")
        counters = client.counters()
        assert counters["connections"] == USERS
        assert counters["connect_errors"] > 0, "the slow server provoked no failed attempt"
        assert client.status()["connecting"] == 0
    finally:
        stopped = client.stop()
        server.close()
    assert stopped == 0
