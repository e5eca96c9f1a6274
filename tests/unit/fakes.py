"""Fakes for driving the workers without sockets: a transport that keeps what is written,
and a clock that stands still until a test moves it."""

from __future__ import annotations

from collections.abc import Callable

from hongbao import protocol as p


class FakeClock:
    """Stands in for the ``time`` module inside a worker module (monkeypatch its ``time``):
    wall and monotonic time are the same number, set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


class FakeTransport:
    """Keeps every byte written; ``on_write`` (if given) is called with each write, before
    it is kept, so a test can see the world as it was when the write happened."""

    def __init__(self, on_write: Callable[[bytes], None] | None = None) -> None:
        self.written = b""
        self.aborted = False
        self.closed = False
        self._on_write = on_write

    def write(self, data: bytes) -> None:
        if self._on_write is not None:
            self._on_write(data)
        self.written += data

    def frames(self) -> list[p.Frame]:
        frames, rest = p.decode_frames(self.written)
        assert rest == b""
        return frames

    def frames_of(self, kind: type) -> list:
        return [frame for frame in self.frames() if type(frame) is kind]

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.aborted or self.closed

    def get_write_buffer_size(self) -> int:
        return 0
