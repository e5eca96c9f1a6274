"""One client connection on the server: a slotted asyncio Protocol, no task, no stream."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hongbao.protocol import SHAKE_PREFIX, Login, ProtocolError, decode_frames

if TYPE_CHECKING:
    from hongbao.server.worker import ServerWorker


class ServerConnection(asyncio.Protocol):
    __slots__ = ("_rest", "_worker", "transport", "user_id")

    def __init__(self, worker: ServerWorker) -> None:
        self._worker = worker
        self._rest = b""
        self.transport: asyncio.Transport | None = None
        self.user_id: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._worker.counters.connections += 1

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
                if self.user_id is None and type(frame) is not Login:
                    raise ProtocolError("not_logged_in", f"first frame is {type(frame).__name__}")
                self._worker.handle(self, frame)
        except ProtocolError as error:
            self._worker.protocol_error(self, error)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker.disconnected(self)
        self.transport = None
