"""One user's connection on the client: a slotted asyncio Protocol, no task, no stream;
its transport is an ``EpollTransport`` (``hongbao.node.epoll_transport``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hongbao import protocol as p

if TYPE_CHECKING:
    from hongbao.client.worker import ClientWorker


class ClientConnection(asyncio.Protocol):
    """``pending`` is the intended send time of the oldest unanswered shake and
    ``inflight`` how many are unanswered (responses come back in order); ``queued`` is how
    many of its shakes are still in the worker's timeout queue, answered or not."""

    __slots__ = ("_rest", "_worker", "connected_at", "inflight", "logged_in", "login_expired",
                 "pending", "queued", "transport", "user")

    def __init__(self, worker: ClientWorker, user: int) -> None:
        self._worker = worker
        self.user = user
        self._rest = b""
        self.transport: asyncio.Transport | None = None
        self.logged_in = False
        self.login_expired = False
        self.connected_at = 0.0  # when the socket was up: the login's round trip starts
        self.pending = 0.0
        self.inflight = 0
        self.queued = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._worker.connected(self)
        transport.write(p.encode_login(self.user, self._worker.now_s))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._rest:
            data = self._rest + data
        try:
            frames, self._rest = p.decode_frames(data)
        except p.ProtocolError as error:
            self._worker.protocol_error(self, error)
            return
        worker = self._worker
        for frame in frames:
            kind = type(frame)
            if kind is p.ShakeResult:
                worker.on_shake_result(self, frame)  # type: ignore[arg-type]
            elif kind is p.SendNotice:
                worker.on_notice(self, frame)  # type: ignore[arg-type]
            elif kind is p.ClaimResult:
                worker.on_claim_result(self, frame)  # type: ignore[arg-type]
            elif kind is p.LoginOk:
                worker.logged_in(self)
            else:
                worker.protocol_error(self, p.ProtocolError("unexpected_cmd", kind.__name__))
                return

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._worker.disconnected(self)
