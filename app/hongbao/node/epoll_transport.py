"""Connections as bare descriptors on one epoll, which the event loop watches as one reader.

uvloop's transport costs 1.29 KB of RSS per idle connection (``bench/uvloop_floor.py``):
at 1,000,000 connections, most of issue 8's 1.5 GB for the whole server. Here a connection
is its descriptor and one small object. The event loop wakes on the epoll's descriptor,
and every connection that is ready is read or written in that one pass.

An ``EpollTransport`` speaks the part of ``asyncio.Transport`` the workers use (``write``,
``close``, ``abort``, ``is_closing``, ``get_write_buffer_size``), and drives an
``asyncio.Protocol``'s ``connection_made``, ``data_received`` and ``connection_lost``.
Two differences from asyncio's transports: ``connection_lost`` is called at once, not on
the loop's next pass, and an end of file closes the connection (no half-closed state).

A client's connect runs on the same epoll (``connect``): no task, future or timer per
attempt, as ``asyncio.wait_for(loop.sock_connect(...))`` needs. That machinery was a fifth
of a client worker's busy time in a connect storm (py-spy, 36,000 users on loopback).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
ConnectFailed = Callable[[asyncio.Protocol, OSError], None]

READ_SIZE = 65536  # bytes read per readable connection and pass; more waits for the next
# Ready connections handled per wake-up of the loop: polls of up to EVENTS_PER_POLL, until
# one returns fewer or POLLS_PER_PASS were made, as libuv does. With one poll a pass, a
# client worker short of CPU at 1M connections read at most 1,024 answers between two
# passes of its send timer, which sent up to a second's worth each: 10.7% of phase 2's
# shakes were answered within the timeout, against 99.986% with uvloop's transports.
EVENTS_PER_POLL = 1024
POLLS_PER_PASS = 48
READING = select.EPOLLIN
WRITING = select.EPOLLOUT  # a closing connection only writes what it has left


class EpollTransports:
    """The connections of one worker: one epoll, and the transport of each descriptor."""

    __slots__ = ("_by_fd", "_connecting", "_epoll", "_loop")

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._by_fd: dict[int, EpollTransport] = {}
        # Connects in progress, by descriptor: the socket, its protocol, whom to tell of a
        # failure.
        self._connecting: dict[int, tuple[socket.socket, asyncio.Protocol, ConnectFailed]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have ``loop`` wake on any ready connection."""
        self._loop = loop
        loop.add_reader(self._epoll.fileno(), self._ready)

    def close(self) -> None:
        """Stop watching; the connections still open are aborted, the connects in progress
        dropped."""
        for transport in list(self._by_fd.values()):
            transport.abort()
        for sock, _protocol, _failed in self._connecting.values():
            sock.close()
        self._connecting.clear()
        if self._loop is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._loop = None
        self._epoll.close()

    def __len__(self) -> int:
        return len(self._by_fd)

    def adopt(self, sock: socket.socket, protocol: asyncio.Protocol) -> EpollTransport:
        """Take over a connected, non-blocking socket: ``sock`` gives up its descriptor
        (the socket object is not kept), and ``protocol`` is told it is connected."""
        self._epoll.register(sock.fileno(), READING)  # on failure, the caller still owns sock
        return self._take(sock.detach(), protocol)

    def _take(self, fd: int, protocol: asyncio.Protocol) -> EpollTransport:
        transport = EpollTransport(self, fd, protocol)
        self._by_fd[fd] = transport
        protocol.connection_made(transport)
        return transport

    def connect(self, sock: socket.socket, address: tuple[str, int],
                protocol: asyncio.Protocol, failed: ConnectFailed) -> int:
        """Start connecting the non-blocking ``sock`` to ``address``, on this epoll.
        ``protocol`` is told it is connected once the connect completes, or ``failed`` is
        called with the protocol and the error. Returns the descriptor, for ``give_up``. A
        connect that fails at once raises OSError, and the caller still owns ``sock``."""
        fd = sock.fileno()
        error = sock.connect_ex(address)
        if error == 0:
            self.adopt(sock, protocol)
            return fd
        if error != errno.EINPROGRESS:
            raise OSError(error, os.strerror(error))
        self._epoll.register(fd, WRITING)  # writable once connected; an error wakes it too
        self._connecting[fd] = (sock, protocol, failed)
        return fd

    def give_up(self, fd: int, protocol: asyncio.Protocol) -> bool:
        """Drop ``protocol``'s connect on ``fd`` if it is still in progress (a timeout);
        False if it has completed or failed already."""
        entry = self._connecting.get(fd)
        if entry is None or entry[1] is not protocol:  # the descriptor is another's now
            return False
        del self._connecting[fd]
        self._epoll.unregister(fd)
        entry[0].close()
        return True

    def watch(self, fd: int, events: int) -> None:
        self._epoll.modify(fd, events)

    def forget(self, fd: int) -> None:
        del self._by_fd[fd]
        self._epoll.unregister(fd)

    def _ready(self) -> None:
        by_fd = self._by_fd
        poll = self._epoll.poll
        for _ in range(POLLS_PER_PASS):
            ready = poll(0, EVENTS_PER_POLL)
            for fd, events in ready:
                transport = by_fd.get(fd)
                if transport is None:  # a connect ending, or closed earlier in this pass
                    if fd in self._connecting:
                        self._connect_ended(fd)
                    continue
                if events & WRITING:
                    transport.writable()
                if events & ~WRITING:  # readable, hung up or in error: a read tells which
                    transport.readable()
            if len(ready) < EVENTS_PER_POLL:
                return

    def _connect_ended(self, fd: int) -> None:
        sock, protocol, failed = self._connecting.pop(fd)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self._epoll.unregister(fd)
            sock.close()
            failed(protocol, OSError(error, os.strerror(error)))
            return
        self._epoll.modify(fd, READING)
        self._take(sock.detach(), protocol)


class EpollTransport:
    """One connection: its descriptor, its protocol, and the bytes the kernel did not take
    yet (sent, in order, before anything written later)."""

    __slots__ = ("_closing", "_fd", "_owner", "_protocol", "_unsent")

    def __init__(self, owner: EpollTransports, fd: int, protocol: asyncio.Protocol) -> None:
        self._owner = owner
        self._fd = fd
        self._protocol = protocol
        self._unsent: bytearray | None = None
        self._closing = False

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._unsent is not None:
            self._unsent += data
            return
        sent = self._syscall(os.write, data)
        if sent is None:
            if self._fd < 0:  # lost
                return
            sent = 0  # no room at all
        if sent < len(data):
            self._unsent = bytearray(memoryview(data)[sent:])
            self._owner.watch(self._fd, READING | WRITING)

    def get_write_buffer_size(self) -> int:
        return 0 if self._unsent is None else len(self._unsent)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close once what is unsent has gone out; nothing more is read."""
        if self._closing:
            return
        self._closing = True
        if self._unsent is None:
            self._lost(None)
        else:
            self._owner.watch(self._fd, WRITING)

    def abort(self) -> None:
        """Close now; what is unsent is dropped."""
        self._lost(None)

    def readable(self) -> None:
        """Readable, hung up or in error. A connection closing with bytes unsent still
        reads, dropping what it reads, to learn of a hang-up or an error."""
        if self._fd < 0:
            return
        data = self._syscall(os.read, READ_SIZE)
        if data is None:  # nothing yet, or lost
            return
        if not data:  # the peer closed
            self._lost(None)
        elif not self._closing:
            self._protocol.data_received(data)

    def writable(self) -> None:
        unsent = self._unsent
        if self._fd < 0 or unsent is None:
            return
        sent = self._syscall(os.write, unsent)
        if sent is None:  # no room yet, or lost
            return
        del unsent[:sent]
        if unsent:
            return
        self._unsent = None
        if self._closing:
            self._lost(None)
        else:
            self._owner.watch(self._fd, READING)

    def _syscall(self, call: Callable[[int, Any], T], argument: Any) -> T | None:
        """``call(fd, argument)``; None when it would block, or when it failed, which loses
        the connection (reset by the peer, say)."""
        try:
            return call(self._fd, argument)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as error:
            self._lost(error)
            return None

    def _lost(self, error: Exception | None) -> None:
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        self._closing = True
        self._unsent = None
        self._owner.forget(fd)
        os.close(fd)
        self._protocol.connection_lost(error)
