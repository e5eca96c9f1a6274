"""One server worker process: its share of connections, SETs, generators and ledger."""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import random
import socket
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from hongbao import protocol as p
from hongbao.metrics.emitter import PerSecondEmitter
from hongbao.metrics.pointfile import PointFile
from hongbao.metrics.ratelimitedlog import RateLimitedLog
from hongbao.money import LedgerWriter, split_amount
from hongbao.node.commands import SetPhase
from hongbao.node.epoll_transport import EpollTransports
from hongbao.node.worker_loop import WorkerRuntime, worker_title
from hongbao.pacing import SteadyRate
from hongbao.plan import FD_RESERVE, open_files_limit
from hongbao.server.commands import Retune, SetSendRate, SetShakeRate, SkipIds
from hongbao.server.config import ServerConfig
from hongbao.server.connection import ServerConnection
from hongbao.server.counters import SERVER_GAUGES, ServerCounters
from hongbao.server.online_users import OnlineUsers
from hongbao.server.send_book import SendBook, SentPacket
from hongbao.server.shake_sets import ShakeSets
from hongbao.server.write_ahead import WriteAheadLedger

log = logging.getLogger(__name__)

GENERATOR_INTERVAL = 0.02  # the shortest time between generator steps: 50 a second
GENERATOR_MAX_INTERVAL = 0.2  # the longest: a slow generator still steps 5 times a second
STEP_SLACK = 2  # a step may release up to two intervals' worth (timer jitter)
LOGIN_SWEEP_INTERVAL = 0.25  # seconds between looks for connections past the login timeout
ACCEPT_BATCH = 256  # connections accepted per wake-up of the listener
RESUME_MARGIN = 64  # accept again once this many descriptors are free below the cap
SHORT_OF_RECIPIENTS_LOG_S = 10.0  # at most one "sends wait" line per worker this often
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_cap() -> int:
    """Connections this worker holds before it stops accepting: its open-files limit less
    what it keeps for itself."""
    return max(0, open_files_limit() - FD_RESERVE)


def generator_interval(rate: float) -> float:
    """Seconds between generator steps at ``rate`` packets a second in all: about one
    packet a step, since each step wakes the worker (at 1M connections, 51 workers each
    making 4 of the seed's 200 packets a second woke 50 times a second for them)."""
    if rate <= 0:
        return GENERATOR_MAX_INTERVAL
    return min(GENERATOR_MAX_INTERVAL, max(GENERATOR_INTERVAL, 1 / rate))


def one_step(rate: float) -> int:
    """The most packets one generator step may make: a step's worth at ``rate``, with
    room for a step that fired late. A generator that fell further behind (a stalled
    loop) slips its schedule instead of catching up in a burst."""
    return max(1, math.ceil(rate * generator_interval(rate) * STEP_SLACK))
DEGRADED_EXIT = 3  # a worker that could not write its ledger or metrics exits with this


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listener that shares its port with the node's other workers (SO_REUSEPORT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


class ServerWorker:
    """Handles frames for its connections and runs its share of both generators."""

    def __init__(self, config: ServerConfig, index: int) -> None:
        self.config = config
        self.index = index
        self.counters = ServerCounters()
        self.sets = ShakeSets(config.n_sets)
        self.online = OnlineUsers()
        self.book = SendBook()
        self.rng = random.Random(None if config.seed is None else config.seed * 1000 + index)
        name = f"{config.host_name}-w{index}"
        self.ledger = LedgerWriter(config.run_dir / "ledger" / f"{name}-{os.getpid()}.tsv")
        self.payouts = WriteAheadLedger(self.ledger, self._ledger_failed, self._take_back)
        self.paying = True  # until the ledger cannot be written
        self.degraded: dict[str, str] = {}  # what could not be written -> the error
        self._unsent: set[int] = set()  # sent packets whose notices were taken back
        tags = {"host": config.host_name, "worker": str(index), "run_id": config.run_id,
                "phase": config.phase}
        self.emitter = PerSecondEmitter(
            PointFile(config.run_dir, f"server-{name}"), "server", tags, SERVER_GAUGES
        )
        self.max_per_second = max(1, math.ceil(config.max_qps / config.workers))
        self.max_per_connection = config.max_qps_per_connection
        self.second_requests = 0
        self.now_s = int(time.time())
        self.shake_rate = SteadyRate(0, 0, 0.0)
        self.send_rate = SteadyRate(0, 0, 0.0)
        self.send_range = (0, 2**32 - 1)
        self._next_shake_id = p.SHAKE_PACKET_ID_BASE + index
        self._next_send_id = p.SEND_PACKET_ID_BASE + index
        self._generator_timer: asyncio.TimerHandle | None = None
        self._notices = RateLimitedLog(log, SHORT_OF_RECIPIENTS_LOG_S)
        self._listener: socket.socket | None = None
        self._accepting = False
        self.transports = EpollTransports()
        self._connection_cap = connection_cap()
        self._awaiting_login: deque[tuple[float, ServerConnection]] = deque()  # (deadline, c)
        self._handlers = {
            p.Login: self.on_login,
            p.Shake: self.on_shake,
            p.Claim: self.on_claim,
        }

    # ---- lifecycle (WorkerBody) ----
    async def start(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self._listener = listening_socket(self.config.listen_host, self.config.port,
                                          self.config.backlog)
        self.transports.start(loop)
        self._resume_accepting()
        loop.call_later(LOGIN_SWEEP_INTERVAL, self._close_late_logins)
        return {"port": self._listener.getsockname()[1], "pid": os.getpid()}

    def on_command(self, command: object) -> None:
        now = time.time()
        match command:
            case SetShakeRate(qps, total):
                self.shake_rate = SteadyRate(qps, total, now)
            case SetSendRate(qps, total, min_uid, max_uid):
                self.send_rate = SteadyRate(qps, total, now)
                self.send_range = (min_uid, max_uid)
            case Retune(generator, qps):
                (self.shake_rate if generator == "shake" else self.send_rate).retune(qps, now)
            case SkipIds(shake_floor, send_floor):
                self._next_shake_id = max(self._next_shake_id, shake_floor)
                self._next_send_id = max(self._next_send_id, send_floor)
                return
            case SetPhase(name):
                self.emitter.tags["phase"] = name
                return
            case _:
                log.error("unknown command %r", command)
                return
        self._ensure_generator_running()

    def tick(self, second: int) -> dict[str, Any]:
        self.now_s = second + 1
        self.second_requests = 0
        self._connection_cap = connection_cap()  # the limit may have been changed
        if not self._accepting:
            self._resume_accepting()
        totals = self.counters.as_dict()
        try:
            self.emitter.emit(second, totals)
        except OSError as error:
            self._degrade("metrics", f"metrics under {self.config.run_dir} cannot be "
                          f"written ({error.strerror}): per-second points are lost and the "
                          f"worker will exit with status {DEGRADED_EXIT}", error)
        return {
            "counters": totals,
            "degraded": self.degraded,
            "gauges": {
                "degraded": int(bool(self.degraded)),
                "queued": len(self.sets),
                "open_sent": len(self.book.open),
                "shake_released": self.shake_rate.released,
                "shake_total": self.shake_rate.total,
                "send_released": self.send_rate.released,
                "send_total": self.send_rate.total,
            },
            "next_ids": {"shake": self._next_shake_id, "send": self._next_send_id},
            "phase": self.emitter.tags["phase"],
        }

    async def drain(self) -> None:
        """Stop accepting, stop the generators, close connections, then close the ledger
        with a snapshot of what is still queued."""
        self._stop_accepting()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._generator_timer is not None:
            self._generator_timer.cancel()
        self.payouts.flush()  # the replies still held go out before their connections close
        for connection in list(self.online.connections.values()):
            connection.close()
        await asyncio.sleep(0.2)  # let close() flush what is buffered
        self.transports.close()
        clean, self.paying = self.paying, False  # nothing is paid or recorded after this
        if clean:
            self.ledger.still_queued(self.sets.queued())
        try:
            self.ledger.close(clean=clean)
        except OSError as error:
            self._ledger_failed(error)

    # ---- frames ----
    def handle(self, connection: ServerConnection, frame: p.Frame) -> None:
        handler = self._handlers.get(type(frame))
        if handler is None:
            raise p.ProtocolError("unexpected_cmd", f"{type(frame).__name__} is server-to-client")
        handler(connection, frame)

    def on_login(self, connection: ServerConnection, frame: p.Login) -> None:
        if connection.user_id is not None:
            raise p.ProtocolError("login_twice", f"user {connection.user_id} logged in again")
        connection.user_id = frame.user_id
        replaced = self.online.add(frame.user_id, connection)
        if replaced is not None:
            replaced.user_id = None  # its disconnect must not log the new one out
            replaced.abort()
        self.counters.logins += 1
        connection.write(p.encode_login_ok(frame.user_id, self.now_s))

    def on_shake(self, connection: ServerConnection, _frame: p.Shake | None = None) -> None:
        """The shake is the logged-in user's whatever the frame says (it is not decoded on
        the hot path)."""
        counters = self.counters
        user = connection.user_id
        counters.requests += 1
        counters.responses += 1
        own_budget = connection.spend_budget(self.now_s, self.max_per_connection)
        self.second_requests += own_budget  # a greedy connection spends only its own budget
        if not own_budget or self.second_requests > self.max_per_second:
            counters.overload += 1
            reply = p.encode_shake_result(user, p.RESULT_OVERLOAD, 0, 0, self.now_s)
        else:
            packet = self.sets.take(user) if self.paying else None
            if packet is None:
                counters.none += 1
                reply = p.encode_shake_result(user, p.RESULT_NONE, 0, 0, self.now_s)
            else:
                packet_id, amount = packet
                counters.won += 1
                counters.won_amount += amount
                self.ledger.won(packet_id, user, amount)
                self.payouts.pay(connection, p.encode_shake_result(
                    user, p.RESULT_WON, packet_id, amount, self.now_s))
                return
        self.payouts.reply(connection, reply)

    def on_claim(self, connection: ServerConnection, frame: p.Claim) -> None:
        user = connection.user_id
        # A claim on someone else's behalf is a stranger's claim: it gets 0.
        on_own_behalf = frame.user_id in (0, user)
        amount = self.book.claim(frame.packet_id, user) if on_own_behalf and self.paying else 0
        if amount:
            self.counters.claims += 1
            self.counters.claimed_amount += amount
            self.ledger.claimed(frame.packet_id, user, amount)
            self.payouts.pay(connection, p.encode_claim_result(frame.packet_id, amount, self.now_s))
        else:
            self.counters.claims_rejected += 1
            self.payouts.reply(connection, p.encode_claim_result(frame.packet_id, 0, self.now_s))

    def protocol_error(self, connection: ServerConnection, error: p.ProtocolError) -> None:
        self.counters.protocol_errors += 1
        log.debug("closing connection of user %s: %s", connection.user_id, error)
        connection.abort()

    def connected(self, connection: ServerConnection) -> None:
        self.counters.connections += 1
        deadline = time.monotonic() + self.config.login_timeout_s
        self._awaiting_login.append((deadline, connection))

    def disconnected(self, connection: ServerConnection) -> None:
        self.counters.connections -= 1
        if connection.user_id is not None:
            self.online.remove(connection.user_id, connection)
        if not self._accepting and self._has_room(RESUME_MARGIN):
            self._resume_accepting()

    def slow_closed(self, connection: ServerConnection) -> None:
        self.counters.slow_closed += 1
        log.debug("closed user %s: it does not read its replies", connection.user_id)

    def _close_late_logins(self) -> None:
        """Close connections that did not log in within --login-timeout."""
        now = time.monotonic()
        waiting = self._awaiting_login
        while waiting and waiting[0][0] <= now:
            _, connection = waiting.popleft()
            transport = connection.transport
            if connection.user_id is None and transport is not None \
                    and not transport.is_closing():
                self.counters.login_timeouts += 1
                connection.abort()
        asyncio.get_running_loop().call_later(LOGIN_SWEEP_INTERVAL, self._close_late_logins)

    # ---- accepting: stop near the open-files limit instead of accept-then-close ----
    def _has_room(self, margin: int = 0) -> bool:
        return self.counters.connections + margin < self._connection_cap

    def _resume_accepting(self) -> None:
        if self._listener is not None and not self._accepting and self._has_room():
            asyncio.get_running_loop().add_reader(self._listener.fileno(), self._accept_ready)
            self._accepting = True

    def _stop_accepting(self) -> None:
        if self._listener is not None and self._accepting:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._accepting = False

    def _pause_accepting(self, why: str) -> None:
        self._stop_accepting()
        self.counters.accept_pauses += 1
        log.warning("not accepting connections while %s (%d connections, cap %d); "
                    "resuming when some close", why, self.counters.connections,
                    self._connection_cap)

    def _accept_ready(self) -> None:
        assert self._listener is not None
        for _ in range(ACCEPT_BATCH):
            if not self._has_room():
                self._pause_accepting("near the open-files limit")
                return
            try:
                sock, _address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in OUT_OF_DESCRIPTORS:
                    self._pause_accepting(f"out of descriptors ({error.strerror})")
                return
            sock.setblocking(False)
            self.transports.adopt(sock, ServerConnection(self))

    # ---- generators ----
    def _ensure_generator_running(self) -> None:
        if self._generator_timer is None:
            self._generator_timer = asyncio.get_running_loop().call_soon(self._generate)

    def _generate(self) -> None:
        if not self.paying:  # a packet made now could not be recorded
            self._generator_timer = None
            return
        now = time.time()
        for _ in range(self.shake_rate.due(now, one_step(self.shake_rate.rate))):
            self._generate_shake_packet()
        due_sends = self.send_rate.due(now, one_step(self.send_rate.rate))
        for sent in range(due_sends):
            if not self._send_packet():
                self.send_rate.released -= due_sends - sent  # retry once users are online
                self._say_short_of_recipients()
                break
        active = [rate for rate in (self.shake_rate, self.send_rate) if not rate.done]
        self._generator_timer = (
            asyncio.get_running_loop().call_later(
                generator_interval(sum(rate.rate for rate in active)), self._generate)
            if active else None
        )

    def _generate_shake_packet(self) -> None:
        packet_id = self._next_shake_id
        self._next_shake_id += self.config.workers
        amount = self.rng.randint(self.config.shake_amount.low, self.config.shake_amount.high)
        self.sets.feed(packet_id, amount)
        self.ledger.generated(packet_id, amount)
        self.payouts.recorded()
        self.counters.generated += 1
        self.counters.generated_amount += amount

    def _say_short_of_recipients(self) -> None:
        """A sent packet needs RECIPIENTS_PER_PACKET users online on this worker within
        the send range; until it has them its share of the sends waits. Say so, every
        SHORT_OF_RECIPIENTS_LOG_S at most, rather than stall in silence."""
        low, high = self.send_range
        # The count scans the online users: made only for a line that goes out, not on
        # each of the 50 generator steps a second that find too few.
        self._notices.log("short_of_recipients", logging.WARNING, lambda: (
            f"sends wait: this worker holds {self.online.count_in(low, high)} online users "
            f"in {low}..{high}, a sent packet needs {p.RECIPIENTS_PER_PACKET} (connections "
            "are spread over the workers by the kernel; a wider range or more users helps)"))

    def _send_packet(self) -> bool:
        low, high = self.send_range
        recipients = self.online.draw(p.RECIPIENTS_PER_PACKET, low, high, self.rng)
        if recipients is None:
            return False
        packet_id = self._next_send_id
        self._next_send_id += self.config.workers
        amount = self.rng.randint(self.config.send_amount.low, self.config.send_amount.high)
        shares = split_amount(amount, len(recipients), self.rng)
        self.book.add(packet_id, SentPacket(amount, recipients, shares))
        self.ledger.sent(packet_id, amount, recipients, shares)
        notice = p.encode_send_notice(packet_id, amount, tuple(recipients), self.now_s)
        for user in recipients:
            self.payouts.pay(self.online.connections[user], notice)
        self.counters.sent_packets += 1
        self.counters.sent_amount += amount
        return True

    # ---- write errors: stop paying, say so once, keep ticking, exit non-zero ----
    def _ledger_failed(self, error: OSError) -> None:
        self.paying = False
        self._degrade("ledger", f"ledger {self.ledger.path} cannot be written "
                      f"({error.strerror}): this worker stops paying out (shakes get 'none "
                      f"available', claims get 0) and will exit with status {DEGRADED_EXIT}",
                      error)

    def _degrade(self, what: str, message: str, error: OSError) -> None:
        if what not in self.degraded:
            self.degraded[what] = error.strerror or str(error)
            log.error("%s", message)

    def _take_back(self, reply: bytes) -> bytes | None:
        """A paying reply whose ledger record could not be written: un-count it, and
        answer 'none available' or 0 instead (a notice is not sent)."""
        (frame,), _ = p.decode_frames(reply)
        counters = self.counters
        if type(frame) is p.ShakeResult:
            counters.won -= 1
            counters.won_amount -= frame.amount
            counters.none += 1
            return p.encode_shake_result(frame.user_id, p.RESULT_NONE, 0, 0, self.now_s)
        if type(frame) is p.ClaimResult:
            counters.claims -= 1
            counters.claimed_amount -= frame.amount
            counters.claims_rejected += 1
            return p.encode_claim_result(frame.packet_id, 0, self.now_s)
        if type(frame) is p.SendNotice and frame.packet_id not in self._unsent:
            self._unsent.add(frame.packet_id)
            counters.sent_packets -= 1
            counters.sent_amount -= frame.amount
        return None


def worker_main(config: ServerConfig, index: int, conn: Connection) -> None:
    """Entry point of a server worker process."""
    worker = ServerWorker(config, index)
    code = WorkerRuntime(worker, conn, worker_title("server", index, config.run_id)).run()
    raise SystemExit(code or (DEGRADED_EXIT if worker.degraded else 0))
