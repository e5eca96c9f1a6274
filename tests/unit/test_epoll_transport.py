"""EpollTransport over real socket pairs: reads reach the protocol, writes the kernel does
not take wait and go out in order, close flushes, abort drops, a peer's close or reset is
a lost connection, and a descriptor closed in a pass is not handled later in it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from hongbao.node import epoll_transport
from hongbao.node.epoll_transport import EpollTransport, EpollTransports


class Recording(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: EpollTransport | None = None
        self.received = b""
        self.lost: list[Exception | None] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


@pytest.fixture
def transports() -> Iterator[EpollTransports]:
    owner = EpollTransports()
    yield owner
    owner.close()


def connected(transports: EpollTransports) -> tuple[Recording, socket.socket]:
    """A protocol on one end of a socket pair (adopted), and the peer's end."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(5)
    protocol = Recording()
    transports.adopt(ours, protocol)
    return protocol, peer


def one_pass(transports: EpollTransports) -> None:
    transports._ready()


def peer_reads_all(peer: socket.socket) -> bytes:
    """What the peer can read until our end closes."""
    data = b""
    while chunk := peer.recv(65536):
        data += chunk
    return data


def fill_until_blocked(transport: EpollTransport) -> bytes:
    """Write until the kernel's buffers are full and some bytes wait in the transport."""
    written = b""
    block = bytes(range(256)) * 256
    while transport.get_write_buffer_size() == 0:
        transport.write(block)
        written += block
    return written


def test_data_from_the_peer_reaches_the_protocol(transports: EpollTransports) -> None:
    protocol, peer = connected(transports)
    assert protocol.transport is not None and len(transports) == 1
    peer.sendall(b"shake")
    one_pass(transports)
    assert protocol.received == b"shake"


def test_a_write_goes_straight_to_the_peer(transports: EpollTransports) -> None:
    protocol, peer = connected(transports)
    assert protocol.transport is not None
    protocol.transport.write(b"reply")
    assert protocol.transport.get_write_buffer_size() == 0
    assert peer.recv(100) == b"reply"


def test_bytes_the_kernel_did_not_take_go_out_in_order(transports: EpollTransports) -> None:
    protocol, peer = connected(transports)
    transport = protocol.transport
    assert transport is not None
    written = fill_until_blocked(transport) + b"after"
    transport.write(b"after")  # queued behind the unsent bytes, not sent ahead of them
    received = b""
    while len(received) < len(written):
        received += peer.recv(1 << 20)
        one_pass(transports)
    assert received == written
    assert transport.get_write_buffer_size() == 0


def blocked(transports: EpollTransports
            ) -> tuple[Recording, socket.socket, EpollTransport, bytes]:
    """A connection whose peer does not read, written to until bytes wait in it."""
    protocol, peer = connected(transports)
    transport = protocol.transport
    assert transport is not None
    return protocol, peer, transport, fill_until_blocked(transport)


def test_close_sends_what_is_unsent_then_closes(transports: EpollTransports) -> None:
    protocol, peer, transport, written = blocked(transports)
    transport.close()
    assert transport.is_closing() and protocol.lost == []
    received = b""
    while protocol.lost == []:
        received += peer.recv(1 << 20)
        one_pass(transports)
    assert received + peer_reads_all(peer) == written
    assert protocol.lost == [None] and len(transports) == 0


def test_abort_drops_what_is_unsent_and_closes_at_once(transports: EpollTransports) -> None:
    protocol, peer, transport, written = blocked(transports)
    transport.abort()
    assert protocol.lost == [None] and len(transports) == 0
    assert len(peer_reads_all(peer)) < len(written)
    transport.write(b"too late")  # ignored, no error
    transport.abort()
    assert protocol.lost == [None]  # lost once


def test_the_peer_closing_is_a_lost_connection(transports: EpollTransports) -> None:
    protocol, peer = connected(transports)
    peer.sendall(b"last words")
    peer.close()
    one_pass(transports)
    one_pass(transports)
    assert protocol.received == b"last words"
    assert protocol.lost == [None] and len(transports) == 0


def test_a_reset_is_a_lost_connection_with_its_error(transports: EpollTransports) -> None:
    protocol, peer = connected(transports)
    assert protocol.transport is not None
    peer.close()
    protocol.transport.write(b"x")  # may still be taken by the kernel
    protocol.transport.write(b"y")  # the pair is gone: EPIPE at the latest
    one_pass(transports)
    assert len(protocol.lost) == 1 and len(transports) == 0


class ClosesTheOthers(Recording):
    """On data, aborts every other connection of ``everyone``."""

    def __init__(self, everyone: list[ClosesTheOthers]) -> None:
        super().__init__()
        self.everyone = everyone
        everyone.append(self)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        for other in self.everyone:
            if other is not self and other.transport is not None:
                other.transport.abort()


def test_a_connection_closed_in_a_pass_is_not_handled_later_in_it(
        transports: EpollTransports) -> None:
    everyone: list[ClosesTheOthers] = []
    peers = []
    for _ in range(2):
        ours, peer = socket.socketpair()
        ours.setblocking(False)
        transports.adopt(ours, ClosesTheOthers(everyone))
        peer.sendall(b"x")
        peers.append(peer)
    one_pass(transports)  # both are ready; whichever is handled first closes the other
    assert sorted(protocol.received for protocol in everyone) == [b"", b"x"]
    assert len(transports) == 1


def test_one_pass_reads_every_ready_connection_not_only_one_poll_of_them(
        transports: EpollTransports, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(epoll_transport, "EVENTS_PER_POLL", 4)
    pairs = [connected(transports) for _ in range(10)]
    for _protocol, peer in pairs:
        peer.sendall(b"answer")
    one_pass(transports)
    assert [protocol.received for protocol, _peer in pairs] == [b"answer"] * 10
