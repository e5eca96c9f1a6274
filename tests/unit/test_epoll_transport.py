"""EpollTransport over real socket pairs: reads reach the protocol, writes the kernel does
not take wait and go out in order, close flushes, abort drops, a peer's close or reset is
a lost connection, and a descriptor closed in a pass is not handled later in it. A connect
on the epoll ends connected or failed with its error, or is given up at its timeout."""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import time
from collections.abc import Callable, Iterator

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


# ---- connects on the epoll ----
class Connecting(Recording):
    """A protocol whose connect may fail: the failure is recorded, not raised."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: list[OSError] = []

    def connect_failed(self, protocol: asyncio.Protocol, error: OSError) -> None:
        assert protocol is self
        self.failed.append(error)


def start_connect(transports: EpollTransports, port: int) -> tuple[Connecting, int]:
    protocol = Connecting()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    return protocol, transports.connect(sock, ("127.0.0.1", port), protocol,
                                        protocol.connect_failed)


def passes_until(transports: EpollTransports, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not done():
        assert time.monotonic() < deadline, "no connect ended within 5 s"
        select.select([transports._epoll.fileno()], [], [], 0.1)
        one_pass(transports)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)  # one connection waits to be accepted; later SYNs are dropped
    sock.settimeout(5)
    yield sock
    sock.close()


def test_a_connect_ends_connected_and_carries_data(
        transports: EpollTransports, listener: socket.socket) -> None:
    protocol, _fd = start_connect(transports, listener.getsockname()[1])
    passes_until(transports, lambda: protocol.transport is not None)
    peer, _ = listener.accept()
    protocol.transport.write(b"login")  # type: ignore[union-attr]
    assert peer.recv(5) == b"login"
    peer.sendall(b"ok")
    passes_until(transports, lambda: protocol.received == b"ok")
    assert (protocol.failed, len(transports)) == ([], 1)
    peer.close()


def test_a_refused_connect_fails_with_its_error(transports: EpollTransports) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there
    protocol, _fd = start_connect(transports, port)
    passes_until(transports, lambda: bool(protocol.failed))
    assert [error.errno for error in protocol.failed] == [errno.ECONNREFUSED]
    assert (protocol.transport, len(transports._connecting), len(transports)) == (None, 0, 0)


def test_a_connect_still_in_progress_is_given_up_once_and_only_by_its_own(
        transports: EpollTransports, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    first, _ = start_connect(transports, port)  # fills the listener's queue
    passes_until(transports, lambda: first.transport is not None)
    stalled, fd = start_connect(transports, port)  # its SYN is dropped: no answer
    one_pass(transports)
    assert stalled.transport is None and not stalled.failed
    assert not transports.give_up(fd, Connecting())  # another's descriptor number
    assert transports.give_up(fd, stalled)
    assert not transports.give_up(fd, stalled)
    assert (stalled.transport, stalled.failed, len(transports._connecting)) == (None, [], 0)


def test_closing_drops_the_connects_in_progress(listener: socket.socket) -> None:
    owner = EpollTransports()
    port = listener.getsockname()[1]
    first, _ = start_connect(owner, port)
    passes_until(owner, lambda: first.transport is not None)
    start_connect(owner, port)
    owner.close()
    assert (len(owner._connecting), first.lost) == (0, [None])
