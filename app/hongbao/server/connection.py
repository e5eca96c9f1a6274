"""One client connection on the server: a slotted asyncio Protocol, no task, no stream.

Its transport is an ``EpollTransport`` (``hongbao.node.epoll_transport``). Flow control: a
connection that keeps sending while its replies pile up unsent past ``MAX_UNSENT_BYTES``
(it does not read) is closed and counted as slow.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hongbao.protocol import SHAKE_PREFIX, Login, ProtocolError, decode_frames

if TYPE_CHECKING:
    from hongbao.server.worker import ServerWorker

MAX_UNSENT_BYTES = 256 * 1024


class ServerConnection(asyncio.Protocol):
    __slots__ = ("_budget_second", "_budget_used", "_rest", "_worker", "transport",
                 "user_id")

    def __init__(self, worker: ServerWorker) -> None:
        self._worker = worker
        self._rest = b""
        self.transport: asyncio.Transport | None = None
        self.user_id: int | None = None
        self._budget_second = 0
        self._budget_used = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._worker.connected(self)

    def data_received(self, data: bytes) -> None:
        if len(data) == 16 and self.user_id is not None and not self._rest \
                and data.startswith(SHAKE_PREFIX):
            self._worker.on_shake(self)  # the hot path: exactly one shake, nothing to decode
            return
        if self._rest:
            data = self._rest + data
        try:
            frames, self._rest = decode_frames(data)
            for frame in frames:
                if self.transport is None:  # closed while handling an earlier frame
                    return
                if self.user_id is None and type(frame) is not Login:
                    raise ProtocolError("not_logged_in", f"first frame is {type(frame).__name__}")
                self._worker.handle(self, frame)
        except ProtocolError as error:
            self._worker.protocol_error(self, error)

    def spend_budget(self, second: int, per_second: int) -> bool:
        """Count one shake against this connection's own budget for ``second``; False when
        the connection is over it (so it cannot spend the worker's shared budget)."""
        if self._budget_second != second:
            self._budget_second = second
            self._budget_used = 0
        self._budget_used += 1
        return self._budget_used <= per_second

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None:
            transport.write(data)
            if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
                self.transport = None  # nothing more is written or handled for it
                transport.abort()
                self._worker.slow_closed(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker.disconnected(self)
        self.transport = None
