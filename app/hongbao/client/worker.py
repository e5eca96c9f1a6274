"""One client worker process: a contiguous range of users, one connection each, paced
connects, the paced shake loop, claims, and per-second latency."""

from __future__ import annotations

import asyncio
import errno
import heapq
import logging
import math
import random
import socket
import struct
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from hongbao import protocol as p
from hongbao.backoff import capped_exponential, jittered
from hongbao.client.claim_book import ClaimBook
from hongbao.client.commands import SetQps
from hongbao.client.config import ClientConfig
from hongbao.client.connect_window import ConnectWindow
from hongbao.client.connection import ClientConnection
from hongbao.client.counters import CLIENT_GAUGES, ClientCounters
from hongbao.client.latency import LatencyRecorder
from hongbao.client.source_pairs import SourcePairs
from hongbao.metrics import histograms
from hongbao.metrics.emitter import PerSecondEmitter
from hongbao.metrics.pointfile import PointFile
from hongbao.node.commands import SetPhase
from hongbao.node.epoll_transport import EpollTransports
from hongbao.node.worker_loop import WorkerRuntime, worker_title
from hongbao.pacing import Pacer, SteadyRate, StepGrid, split_count

log = logging.getLogger(__name__)

# Sends go out in steps: each step wakes the worker once. At 1M connections about 100
# workers share 2 cores, each sending a few hundred a second, so at 100 steps a second the
# wake-ups (timer, loop pass, context switch) cost more than the sends
# (bench/packet_path.py). Each worker's steps sit at its own offset in the step, so the
# workers' batches reach the server spread out, not all at once. Latency is measured from
# the start of the step (the intended time), so coarser steps stay honest.
STEPS_PER_SECOND = 25
# While users are still to connect (or to retry), the worker also wakes this often: small
# batches of SYNs keep the server's accept backlog from overflowing.
CONNECT_GRID = StepGrid(100)
# uvloop's timers count whole ms on a clock read once a loop pass, so one may fire up to a
# ms early. A step timer that woke before its step began found nothing due and re-armed at
# 0 ms, spinning until the step began: 13 wake-ups a step (measured at 25 steps a second).
# Delays rounded up to whole ms make an early wake rare, for 0.7 ms of median lateness,
# which the latency (from the step's start) includes.
TIMER_RESOLUTION = 0.001
MAX_CATCH_UP_SECONDS = 5  # after a longer stall, missed sends are counted, not sent
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
SLOW_LOGIN_SHARE = 1 / 6  # a login slower than this share of --login-wait: the server is behind
LINGER_ZERO = struct.pack("ii", 1, 0)  # close with RST: no TIME-WAIT pile-up


def worker_share(config: ClientConfig, index: int) -> tuple[int, int, int]:
    """(first host-local index, user count, qps) of worker ``index``."""
    counts = split_count(config.users, config.workers)
    return sum(counts[:index]), counts[index], split_count(config.qps, config.workers)[index]


class ClientWorker:
    def __init__(self, config: ClientConfig, index: int) -> None:
        self.config = config
        self.index = index
        self.first_index, self.users, qps = worker_share(config, index)
        self.first_user = config.first_user + self.first_index
        self.pairs = SourcePairs(config.source_ips, config.port_low, config.port_high)
        self.pairs.check_room(config.users)
        self.connections: list[ClientConnection | None] = [None] * self.users
        self.counters = ClientCounters()
        self.latency = LatencyRecorder(histograms.log_path(config.run_dir, config.host_name, index))
        name = f"{config.host_name}-w{index}"
        tags = {"host": config.host_name, "worker": str(index), "run_id": config.run_id,
                "phase": config.phase}
        self.emitter = PerSecondEmitter(
            PointFile(config.run_dir, f"client-{name}"), "client", tags, CLIENT_GAUGES
        )
        self.pacer = Pacer(self.users, qps)
        # Workers hold about equal ranges of user ids, so this is the worker's place among all.
        self.grid = StepGrid.spread(STEPS_PER_SECOND, self.first_user // max(1, self.users))
        self.now_s = int(time.time())
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transports = EpollTransports()
        self._sent: deque[tuple[float, ClientConnection]] = deque()  # (intended, conn)
        self._notices_answer_shakes = config.server_kind == "original"
        self.claims = ClaimBook()
        self.draining = False
        self._connect_rate = SteadyRate(0, 0, 0.0)
        self._next_to_connect = 0
        self._retries: list[tuple[float, int]] = []  # heap of (when, local index)
        self._attempts: dict[int, int] = {}
        self._detours: dict[int, int] = {}  # users whose own (ip, port) pair was taken
        self._connecting = 0
        self._window = ConnectWindow(split_count(config.max_connecting, config.workers)[index],
                                     slow_login_s=config.login_wait_s * SLOW_LOGIN_SHARE)
        self._schedule: list[int] = []
        self._schedule_second = 0
        self._cursor = 0
        self._timer: asyncio.TimerHandle | None = None
        self._error_log_at = 0.0
        self._rng = random.Random()
        # Connections that have not seen LOGIN_OK yet, oldest first: (deadline, connection).
        self._awaiting_login: deque[tuple[float, ClientConnection]] = deque()
        # Connects in progress, oldest first: (deadline, descriptor, connection).
        self._connects: deque[tuple[float, int, ClientConnection]] = deque()
        self._server = (config.server_host, config.server_port)

    # ---- lifecycle (WorkerBody) ----
    async def start(self) -> dict[str, Any]:
        rate = split_count(int(self.config.connect_rate * 1000), self.config.workers)[self.index]
        self._connect_rate = SteadyRate(rate / 1000, self.users, time.time())
        self._schedule_second = math.floor(time.time())
        self._loop = asyncio.get_running_loop()
        self.transports.start(self._loop)
        self._timer = self._loop.call_soon(self._step)
        return {"first_user": self.first_user, "users": self.users}

    def on_command(self, command: object) -> None:
        match command:
            case SetQps(qps):
                self.pacer = Pacer(self.users, qps)
                self._wake()
            case SetPhase(name):
                self.emitter.tags["phase"] = name
            case _:
                log.error("unknown command %r", command)

    def tick(self, second: int) -> dict[str, Any]:
        self.now_s = second + 1
        self._expire_timeouts(time.time())
        self._expire_connects(time.time())
        self._expire_logins(time.time())
        totals = self.counters.as_dict()
        self.emitter.emit(second, totals)
        return {
            "counters": totals,
            "second": second,
            "latency_histogram": self.latency.take(second),
            "gauges": {"users": self.users, "connecting": self._connecting,
                       "connect_window": self._window.size,
                       "qps": self.pacer.qps},
        }

    async def drain(self) -> None:
        """Stop sending, give in-flight shakes a moment to come back, then close."""
        self.draining = True
        if self._timer is not None:
            self._timer.cancel()
        deadline = time.monotonic() + min(self.config.timeout_s, 2.0)
        while time.monotonic() < deadline and (self.claims.waiting_count or any(
            c is not None and c.inflight for c in self.connections
        )):
            await asyncio.sleep(0.05)
        for connection in self.connections:
            if connection is not None and connection.transport is not None:
                connection.transport.close()
        await asyncio.sleep(0.05)
        self.transports.close()

    # ---- the step loop: connects and sends ----
    @property
    def _period_or_zero(self) -> float:
        period = self.pacer.period
        return period if period != math.inf else 0.0

    def _idle(self) -> bool:
        """Nothing to connect, retry or send: the step timer can rest."""
        return (not self.pacer.qps and not self._retries and self._connect_rate.done
                and self._cursor >= len(self._schedule))

    def _wake(self) -> None:
        """Restart the step timer after it rested (new QPS, a retry to make)."""
        if self._timer is None and self._loop is not None and not self.draining:
            self._schedule_second = max(self._schedule_second, math.floor(time.time()) - 1)
            self._timer = self._loop.call_soon(self._step)

    def _step(self) -> None:
        now = time.time()
        self._connect_due(now)
        self._send_due(now)
        if self._idle():
            self._timer = None
            return
        wake_at = self.grid.next_after(now)
        if self._retries or not self._connect_rate.done:
            wake_at = min(wake_at, CONNECT_GRID.next_after(now))
        delay = math.ceil((wake_at - time.time()) / TIMER_RESOLUTION) * TIMER_RESOLUTION
        assert self._loop is not None
        self._timer = self._loop.call_later(delay, self._step)

    def _connect_due(self, now: float) -> None:
        self._expire_connects(now)
        room = max(0, self._window.size - self._connecting)  # the window may have shrunk
        while self._retries and self._retries[0][0] <= now and room > 0:
            _, k = heapq.heappop(self._retries)
            self._start_connect(k)
            room -= 1
        due = self._connect_rate.due(now)
        started = min(due, room)
        self._connect_rate.released -= due - started  # held back by the in-flight cap
        for _ in range(started):
            self._start_connect(self._next_to_connect)
            self._next_to_connect += 1

    def _start_connect(self, k: int) -> None:
        """Start user ``k``'s connect on the worker's epoll; it ends in ``connected`` (via
        the connection's ``connection_made``), ``_connect_error`` or, past the timeout,
        ``_expire_connects``."""
        self._connecting += 1
        connection = ClientConnection(self, self.first_user + k)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = self.pairs.pair(self.first_index + k, self.config.users,
                                   self._detours.get(k, 0))
            if pair is not None:
                sock.bind(pair)
            fd = self.transports.connect(sock, self._server, connection, self._connect_error)
        except OSError as error:  # bind (EADDRINUSE, say) or connect failed: retry, backoff
            sock.close()
            self._connect_error(connection, error)
            return
        self._connects.append((time.time() + self.config.timeout_s, fd, connection))
        # On success the user stays "connecting" until LOGIN_OK (logged_in) or the close.

    def _expire_connects(self, now: float) -> None:
        """Drop the connects still in progress at their deadline: the user retries."""
        connects = self._connects
        while connects and connects[0][0] <= now:
            _, fd, connection = connects.popleft()
            if self.transports.give_up(fd, connection):
                self._connect_error(connection, TimeoutError())

    def _connect_error(self, connection: asyncio.Protocol, error: OSError) -> None:
        assert isinstance(connection, ClientConnection)
        k = connection.user - self.first_user
        self._connecting -= 1
        if isinstance(error, TimeoutError):
            self._window.congested(time.time())
        if isinstance(error, TimeoutError) or error.errno == errno.EADDRINUSE:
            self._take_a_detour(k)
        self._connect_failed(k, connect_error_reason(error, self.config.timeout_s))

    def _take_a_detour(self, k: int) -> None:
        """The user's next attempt binds another source pair: its own is taken, or it leads
        (by the server's SO_REUSEPORT hash of the 4-tuple) to a worker that does not
        accept, say one at its open-files cap."""
        self._detours[k] = self._detours.get(k, 0) + 1

    def _connect_failed(self, k: int, reason: str) -> None:
        self.counters.connect_errors += 1
        attempt = self._attempts.get(k, 0) + 1
        self._attempts[k] = attempt
        now = time.time()
        if now - self._error_log_at >= 1.0:
            self._error_log_at = now
            log.warning("connect errors so far: %d (latest: user %d, %s)",
                        self.counters.connect_errors, self.first_user + k, reason)
        if not self.draining:
            self._retry_later(k, attempt)

    def _retry_later(self, k: int, attempt: int) -> None:
        delay = jittered(capped_exponential(attempt, BACKOFF_FIRST, BACKOFF_MAX), self._rng)
        heapq.heappush(self._retries, (time.time() + delay, k))
        self._wake()

    def _send_due(self, now: float) -> None:
        second = math.floor(now)
        while self._schedule_second < second:  # finish earlier seconds first (late, honestly)
            self._send_scheduled(until=len(self._schedule))
            self._schedule_second += 1
            if second - self._schedule_second > MAX_CATCH_UP_SECONDS:
                missed = self.pacer.sends_per_second * (second - self._schedule_second)
                self.counters.send_skipped += missed
                self._schedule_second = second
            self._schedule = self.pacer.senders(self._schedule_second)
            self._cursor = 0
        if self._schedule:
            self._send_scheduled(until=self.grid.due(second, now, len(self._schedule)))

    def _send_scheduled(self, until: int) -> None:
        """Send schedule items [cursor, until). The second's sends go out in the grid's
        even batches; item i is intended at the start of its batch."""
        count = len(self._schedule)
        second = self._schedule_second
        counters = self.counters
        now_s = self.now_s
        sent = self._sent
        grid = self.grid
        for i in range(self._cursor, until):
            connection = self.connections[self._schedule[i]]
            if connection is None or not connection.logged_in:
                counters.send_skipped += 1
                continue
            intended = grid.intended(second, i, count)
            if not connection.inflight:
                connection.pending = intended
            connection.inflight += 1
            connection.queued += 1
            sent.append((intended, connection))
            connection.write(p.encode_shake(connection.user, now_s))
            counters.requests += 1
        self._cursor = max(self._cursor, until)

    def _expire_timeouts(self, now: float) -> None:
        """Look only at sends older than the timeout, oldest first (no scan of every
        connection): a connection whose oldest unanswered shake is that old times out.
        A connection's answers come in order, so the shake taken off the queue is
        unanswered when fewer of its shakes are left behind it than are in flight.
        Claims that old with no reply are counted unanswered (not as shake timeouts)."""
        limit = now - self.config.timeout_s
        self.counters.claims_unanswered += self.claims.expire(limit)
        sent = self._sent
        while sent and sent[0][0] < limit:
            _, connection = sent.popleft()
            connection.queued -= 1
            if connection.inflight > connection.queued:
                self.counters.timeouts += connection.inflight
                connection.inflight = 0

    def _expire_logins(self, now: float) -> None:
        """Abort connections still without LOGIN_OK at their deadline: the close counts as
        a failed attempt and the user retries with backoff (a server that accepted late, or
        never, cannot keep a user waiting for good)."""
        waiting = self._awaiting_login
        while waiting and waiting[0][0] <= now:
            _, connection = waiting.popleft()
            if not connection.logged_in and connection.transport is not None:
                self.counters.login_timeouts += 1
                self._window.congested(now)
                connection.login_expired = True
                connection.transport.abort()

    # ---- connection events ----
    def connected(self, connection: ClientConnection) -> None:
        k = connection.user - self.first_user
        self.connections[k] = connection
        self.counters.connections += 1
        connection.connected_at = time.time()
        self._awaiting_login.append((connection.connected_at + self.config.login_wait_s,
                                     connection))

    def logged_in(self, connection: ClientConnection) -> None:
        connection.logged_in = True
        now = time.time()
        self._window.logged_in(now - connection.connected_at, now)
        self._attempts.pop(connection.user - self.first_user, None)
        self._connecting -= 1
        self.counters.logins += 1
        self.counters.logged_in += 1

    def disconnected(self, connection: ClientConnection) -> None:
        k = connection.user - self.first_user
        if self.connections[k] is connection:
            self.connections[k] = None
        self.counters.connections -= 1
        if connection.logged_in:
            self.counters.logged_in -= 1
            if not self.draining:
                self.counters.disconnects += 1
                self._retry_later(k, self._attempts.get(k, 0) + 1)
            return
        self._connecting -= 1  # a failed attempt: closed before LOGIN_OK
        if self.draining:
            return
        reason = (f"no LOGIN_OK within {self.config.login_wait_s:g} s"
                  if connection.login_expired else "closed by the server before LOGIN_OK")
        if connection.login_expired:
            self._take_a_detour(k)
        self._connect_failed(k, reason)

    def on_shake_result(self, connection: ClientConnection, frame: p.ShakeResult) -> None:
        counters = self.counters
        counters.responses += 1
        self._answer_oldest_shake(connection)
        result = frame.result
        if result == p.RESULT_WON:
            counters.won += 1
            counters.won_amount += frame.amount
        elif result == p.RESULT_NONE:
            counters.none += 1
        elif result == p.RESULT_OVERLOAD:
            counters.overload += 1

    def _answer_oldest_shake(self, connection: ClientConnection) -> None:
        """An answer later than the timeout is a timeout, with no latency recorded, as if
        the once-a-second check had found it unanswered: a worker short of CPU checks late,
        and its figures must not depend on that."""
        if connection.inflight:
            latency_s = time.time() - connection.pending
            if latency_s > self.config.timeout_s:
                self.counters.timeouts += 1
            else:
                self.latency.record(int(latency_s * 1_000_000))
            connection.inflight -= 1
            if connection.inflight:  # the user's next send was intended one period on
                connection.pending += self._period_or_zero

    def on_notice(self, connection: ClientConnection, frame: p.SendNotice) -> None:
        """The original server sends a notice in place of a shake's result; ours pushes
        notices unprompted, so there a notice answers no shake."""
        counters = self.counters
        counters.notices += 1
        if self._notices_answer_shakes and connection.inflight:
            counters.responses += 1
            counters.notices_answered += 1
            self._answer_oldest_shake(connection)
        connection.write(p.encode_claim(0, frame.packet_id, self.now_s))
        counters.claims_sent += 1
        self.claims.sent(connection.user, frame.packet_id, time.time())

    def on_claim_result(self, connection: ClientConnection, frame: p.ClaimResult) -> None:
        counters = self.counters
        if self.claims.answered(connection.user, frame.packet_id):
            counters.claims += 1
            if not frame.amount:
                counters.claims_zero += 1
        else:
            counters.claims_late += 1
        counters.claimed_amount += frame.amount

    def protocol_error(self, connection: ClientConnection, error: p.ProtocolError) -> None:
        self.counters.protocol_errors += 1
        log.warning("user %d: protocol error from server: %s", connection.user, error)
        if connection.transport is not None:
            connection.transport.abort()


def connect_error_reason(error: BaseException, timeout_s: float) -> str:
    """A connect error as a log reason: never empty (a TimeoutError has no message)."""
    if isinstance(error, TimeoutError):
        return f"connect timed out after {timeout_s:g} s"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def worker_main(config: ClientConfig, index: int, conn: Connection) -> None:
    """Entry point of a client worker process."""
    raise SystemExit(WorkerRuntime(ClientWorker(config, index), conn,
                                   worker_title("client", index, config.run_id)).run())
