"""The client's rules, driven through real ClientConnections over fake transports with a
fake clock: who sends in a second and when, shake timeouts, and the login watchdog. No
sockets, no processes, no event loop."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hongbao import protocol as p
from hongbao.client import worker as client_worker
from hongbao.client.commands import SetQps
from hongbao.client.config import ClientConfig
from hongbao.client.connection import ClientConnection
from hongbao.client.worker import MAX_CATCH_UP_SECONDS, STEPS_PER_SECOND, ClientWorker
from hongbao.pacing import StepGrid
from tests.unit.fakes import FakeClock, FakeTransport

START = 1_000_000  # an even second: the fake clock's first reading


# ---- commands from the node: one helper per kind, the only place their shape is known ----
def set_qps(worker: ClientWorker, qps: int) -> None:
    worker.on_command(SetQps(qps))


# ---- the harness ----
@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock(START)
    monkeypatch.setattr(client_worker, "time", clock)
    return clock


def new_worker(tmp_path: Path, **settings: Any) -> ClientWorker:
    config = ClientConfig(run_dir=tmp_path, run_id="unit", host_name="unit",
                          server_host="127.0.0.1", server_port=7000, first_user=100,
                          **settings)
    worker = ClientWorker(config, 0)
    worker.grid = StepGrid(STEPS_PER_SECOND)  # steps on whole steps; one test spreads them
    worker._schedule_second = START - 1  # started in the second before: START is a new one
    return worker


def connect(worker: ClientWorker, k: int) -> tuple[ClientConnection, FakeTransport]:
    """What the worker's own connect does for local user ``k``, once its socket is up."""
    worker._connecting += 1
    connection = ClientConnection(worker, worker.first_user + k)
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return connection, transport


def log_in_everyone(worker: ClientWorker) -> list[tuple[ClientConnection, FakeTransport]]:
    users = [connect(worker, k) for k in range(worker.users)]
    for connection, _ in users:
        connection.data_received(p.encode_login_ok(connection.user, 0))
    return users


def shake_counts(users: list[tuple[ClientConnection, FakeTransport]]) -> list[int]:
    return [len(transport.frames_of(p.Shake)) for _, transport in users]


def senders_so_far(users: list[tuple[ClientConnection, FakeTransport]]) -> list[int]:
    return [k for k, count in enumerate(shake_counts(users)) if count]


def step_at(worker: ClientWorker, clock: FakeClock, now: float) -> None:
    """The send half of the worker's step timer firing at ``now``."""
    clock.now = now
    worker._send_due(now)


def tick_at(worker: ClientWorker, clock: FakeClock, now: float) -> None:
    """The node's per-second tick, arriving at ``now``."""
    clock.now = now
    worker.tick(math.floor(now) - 1)


def answer(connection: ClientConnection) -> None:
    connection.data_received(p.encode_shake_result(connection.user, p.RESULT_NONE, 0, 0, 0))


# ---- pacing ----
def test_a_second_s_senders_go_out_in_even_batches_at_their_intended_steps(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=10, qps=5)  # period 2: t % 2 == u % 2
    users = log_in_everyone(worker)
    order = worker.pacer.senders(START)
    assert sorted(order) == [0, 2, 4, 6, 8]
    # 5 sends in 100 steps: item i is intended at step 20 * i and goes out from then on.
    for now, sent in [(START, 1), (START + 0.1875, 1), (START + 0.21875, 2),
                      (START + 0.5, 3), (START + 0.96875, 5)]:
        step_at(worker, clock, now)
        assert sorted(senders_so_far(users)) == sorted(order[:sent]), now
    assert shake_counts(users) == [1, 0] * 5
    intended = [users[k][0].pending for k in order]
    assert intended == pytest.approx([START + 0.2 * i for i in range(5)], abs=1e-9)
    step_at(worker, clock, START + 1.96875)  # the odd second: the other half
    assert shake_counts(users) == [1] * 10
    assert worker.counters.requests == 10
    assert worker.counters.send_skipped == 0


def test_a_worker_s_own_step_offset_delays_its_batches_and_their_intended_times(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=10, qps=5)
    worker.grid = StepGrid.spread(STEPS_PER_SECOND, 10)  # the eleventh worker
    offset = worker.grid.offset
    assert 0 < offset < 1 / STEPS_PER_SECOND  # 0.18 of a step
    users = log_in_everyone(worker)
    order = worker.pacer.senders(START)
    step_at(worker, clock, START + offset / 2)  # the second's first step has not begun
    assert senders_so_far(users) == []
    for now, sent in [(START + offset, 1), (START + 0.2 + offset / 2, 1),
                      (START + 0.2 + offset, 2), (START + 0.8 + offset, 5)]:
        step_at(worker, clock, now)
        assert sorted(senders_so_far(users)) == sorted(order[:sent]), now
    intended = [users[k][0].pending for k in order]
    assert intended == pytest.approx([START + offset + 0.2 * i for i in range(5)], abs=1e-9)


class RecordingLoop:
    """Stands in for the event loop: records the delays the step timer asks for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def call_later(self, delay: float, _callback: object) -> None:
        self.delays.append(delay)


def test_the_step_timer_waits_whole_ms_and_never_less_than_to_the_next_step(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=10, qps=5)
    log_in_everyone(worker)
    loop = RecordingLoop()
    worker._loop = loop  # type: ignore[assignment]
    for now in (START + 0.0123, START + 0.0399996, START + 0.04):
        clock.now = now
        worker._step()
    # Next steps at +0.04, +0.04 and +0.08: whole ms, and never short of them (a timer
    # that fires early finds its step not begun and would spin).
    assert loop.delays == pytest.approx([0.028, 0.001, 0.04])
    assert all(d * 1000 == pytest.approx(round(d * 1000)) for d in loop.delays)


def test_a_late_step_finishes_the_earlier_second_first_at_its_intended_times(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=10, qps=5)
    users = log_in_everyone(worker)
    step_at(worker, clock, START + 0.5)  # 3 of the even second's 5
    step_at(worker, clock, START + 1.0)  # the loop was late: the rest of START, then 1 more
    even, odd = worker.pacer.senders(START), worker.pacer.senders(START + 1)
    assert sorted(senders_so_far(users)) == sorted([*even, odd[0]])
    late = [users[k][0].pending for k in even[3:]]
    assert late == pytest.approx([START + 0.6, START + 0.8], abs=1e-9)
    assert users[odd[0]][0].pending == START + 1


def test_after_a_long_stall_the_missed_seconds_are_counted_not_sent(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=10, qps=5)
    users = log_in_everyone(worker)
    step_at(worker, clock, START + 0.96875)  # all of START: 5 sends
    stall = MAX_CATCH_UP_SECONDS + 2
    step_at(worker, clock, START + stall)  # START+1 .. START+stall-1 were missed
    assert worker.counters.send_skipped == 5 * (stall - 1)
    assert worker.counters.requests == 5 + 1  # and the new second's first
    assert sum(shake_counts(users)) == 6


def test_a_stall_within_the_catch_up_limit_is_sent_late(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=10, qps=5)
    log_in_everyone(worker)
    step_at(worker, clock, START + 0.96875)
    step_at(worker, clock, START + MAX_CATCH_UP_SECONDS + 1)  # 5 whole seconds behind
    assert worker.counters.send_skipped == 0
    assert worker.counters.requests == 5 + 5 * MAX_CATCH_UP_SECONDS + 1


def test_a_user_not_logged_in_skips_its_turn(tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=4, qps=4)
    connect(worker, 0)  # connected, no LOGIN_OK yet; users 1..3 not even connected
    step_at(worker, clock, START + 0.96875)
    assert (worker.counters.requests, worker.counters.send_skipped) == (0, 4)


# ---- shake timeouts ----
def test_an_unanswered_shake_times_out_once(tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=1, qps=1, timeout_s=5.0)
    [(connection, _)] = log_in_everyone(worker)
    step_at(worker, clock, START)
    tick_at(worker, clock, START + 5.0)  # exactly timeout_s old: not yet
    assert worker.counters.timeouts == 0
    set_qps(worker, 0)
    for now in (START + 5.5, START + 6.5, START + 60):
        tick_at(worker, clock, now)
        assert worker.counters.timeouts == 1
    assert connection.inflight == 0
    answer(connection)  # the answer comes after all: counted, but no latency recorded
    assert (worker.counters.responses, worker.counters.timeouts) == (1, 1)


def test_an_answer_later_than_the_timeout_is_a_timeout_even_before_the_check_runs(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker short of CPU checks for timeouts late: its figures must not depend on
    when the check ran."""
    worker = new_worker(tmp_path, users=2, qps=2, timeout_s=5.0)
    recorded: list[int] = []
    monkeypatch.setattr(client_worker.LatencyRecorder, "record",
                        lambda _self, microseconds: recorded.append(microseconds))
    [(late, _), (in_time, _)] = log_in_everyone(worker)
    step_at(worker, clock, START + 0.96875)  # the last step of the second: both sent
    assert in_time.inflight == late.inflight == 1
    clock.now = in_time.pending + 5.0  # exactly the timeout: still in time
    answer(in_time)
    clock.now = late.pending + 7.0  # no tick has checked since the send
    answer(late)
    counters = worker.counters
    assert (counters.responses, counters.timeouts) == (2, 1)
    assert recorded == [5_000_000]  # the in-time answer's µs; none for the late one
    set_qps(worker, 0)
    tick_at(worker, clock, START + 60)  # the check, at last, finds nothing more
    assert counters.timeouts == 1


def test_the_shakes_behind_an_unanswered_one_time_out_with_it(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=1, qps=1, timeout_s=5.0)
    [(connection, _)] = log_in_everyone(worker)
    for second in range(3):
        step_at(worker, clock, START + second)
    answer(connection)  # the first; the next two stay unanswered
    assert (connection.inflight, connection.pending) == (2, START + 1)
    set_qps(worker, 0)
    tick_at(worker, clock, START + 6.5)  # the second send is past the timeout
    assert worker.counters.timeouts == 2
    for now in (START + 7.5, START + 8.5, START + 60):
        tick_at(worker, clock, now)
    assert worker.counters.timeouts == 2
    assert worker.counters.responses == 1


@pytest.mark.parametrize(("users", "qps", "seconds", "requests", "unanswered"), [
    (10, 5, 3, 15, 5),  # a whole period (2 s): every user sends every other second
    (4, 3, 2, 6, 2),  # not whole (4/3 s): the gaps between a user's sends vary
    (7, 5, 3, 15, 8),
    (8, 6, 3, 18, 10),
])
def test_every_unanswered_shake_times_out_whatever_the_period(
        tmp_path: Path, clock: FakeClock, users: int, qps: int, seconds: int, requests: int,
        unanswered: int) -> None:
    """Each user's first shake is answered, the rest never are."""
    worker = new_worker(tmp_path, users=users, qps=qps, timeout_s=5.0)
    connections = [connection for connection, _ in log_in_everyone(worker)]
    for second in range(seconds):
        step_at(worker, clock, START + second + 0.96875)
    for connection in connections:
        answer(connection)
    set_qps(worker, 0)
    tick_at(worker, clock, START + 60)
    counters = worker.counters
    assert (counters.requests, counters.responses) == (requests, users)
    assert counters.timeouts == unanswered
    assert [connection.inflight for connection in connections] == [0] * users


# ---- the login watchdog ----
def test_a_connection_without_login_ok_is_aborted_at_login_wait_and_retried(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=2, qps=0, login_wait_s=30.0)
    waiting, waiting_transport = connect(worker, 0)
    answered, answered_transport = connect(worker, 1)
    clock.now = START + 29.5
    answered.data_received(p.encode_login_ok(answered.user, 0))  # just in time
    tick_at(worker, clock, START + 29.5)
    assert not waiting_transport.aborted
    tick_at(worker, clock, START + 30.0)
    assert waiting_transport.aborted and not answered_transport.aborted
    assert worker.counters.login_timeouts == 1
    waiting.connection_lost(None)  # what the event loop does after the abort
    counters = worker.counters
    assert (counters.connect_errors, counters.connections, counters.logged_in) == (1, 1, 1)
    assert worker._connecting == 0
    [(retry_at, k)] = worker._retries
    assert k == 0
    # The retry binds another source pair: the server's SO_REUSEPORT hash of the old one may
    # lead to a worker that does not accept (one at its open-files cap).
    assert worker._detours == {0: 1}
    assert START + 30.0 + 0.25 <= retry_at < START + 30.0 + 0.75  # first backoff, jittered
    tick_at(worker, clock, START + 90.0)
    assert worker.counters.login_timeouts == 1


def test_login_timeouts_shrink_the_connects_in_flight(tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, users=200, qps=0, login_wait_s=30.0, max_connecting=1000)
    stuck = [connect(worker, k) for k in range(40)]
    before = worker._window.size
    clock.now = START + 30.0
    status = worker.tick(START + 29)  # none got LOGIN_OK: all 40 time out together
    assert all(transport.aborted for _, transport in stuck)
    assert status["gauges"]["connect_window"] == before // 2  # one signal, one halving


def test_a_window_shrunk_below_the_connects_in_flight_holds_users_back_but_loses_none(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = new_worker(tmp_path, users=100, qps=0, max_connecting=1000)
    started: list[int] = []

    def start_connect(k: int) -> None:  # the connect itself is the event loop's business
        worker._connecting += 1
        started.append(k)

    monkeypatch.setattr(worker, "_start_connect", start_connect)
    worker._connect_rate = client_worker.SteadyRate(1000.0, worker.users, START)
    worker._connecting = 20  # in flight when the server fell behind
    for second in range(5):
        worker._window.congested(START + second)
    assert worker._window.size < 20
    worker._connect_due(START + 1.0)  # every user is due, none may start
    assert started == []
    worker._connecting = 0  # those 20 ended (logged in or failed)
    while len(started) < worker.users:
        worker._connecting = 0
        worker._connect_due(START + 2.0)
    assert started == list(range(worker.users))  # each once, in order


# ---- the connect timeout ----
class StalledConnects:
    """The worker's epoll for connects that never end: each is in progress until given
    up."""

    def __init__(self) -> None:
        self.in_progress: dict[int, tuple[Any, ClientConnection]] = {}

    def connect(self, sock: Any, address: tuple[str, int], protocol: ClientConnection,
                failed: Any) -> int:
        self.in_progress[sock.fileno()] = (sock, protocol)
        return sock.fileno()

    def give_up(self, fd: int, protocol: ClientConnection) -> bool:
        sock, connecting = self.in_progress.pop(fd)
        sock.close()
        return connecting is protocol


def test_a_connect_without_an_answer_is_given_up_at_the_timeout_and_retried_elsewhere(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = new_worker(tmp_path, users=1, qps=0, timeout_s=5.0, max_connecting=1000)
    stalled = StalledConnects()
    monkeypatch.setattr(worker, "transports", stalled)
    window = worker._window.size
    worker._start_connect(0)
    assert (len(stalled.in_progress), worker._connecting) == (1, 1)
    tick_at(worker, clock, START + 4.9)
    assert (len(stalled.in_progress), worker.counters.connect_errors) == (1, 0)
    tick_at(worker, clock, START + 5.0)
    assert (stalled.in_progress, worker._connecting, worker.counters.connect_errors) == \
        ({}, 0, 1)
    assert worker._window.size == window // 2  # the server is behind: fewer in flight
    assert worker._detours == {0: 1}  # the retry binds another source pair
    [(retry_at, k)] = worker._retries
    assert k == 0 and START + 5.0 < retry_at < START + 6.0
