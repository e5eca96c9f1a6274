"""The server's protocol rules, driven through real ServerConnections over fake transports
with a fake clock: shedding at both budgets, login rules, claims, recipient drawing, the
generator's catch-up cap and the write-ahead rule. No sockets, no processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hongbao import protocol as p
from hongbao.server import worker as server_worker
from hongbao.server.commands import SetSendRate, SetShakeRate
from hongbao.server.config import ServerConfig
from hongbao.server.connection import ServerConnection
from hongbao.server.worker import ServerWorker, generator_interval, one_step
from tests.unit.fakes import FakeClock, FakeTransport

START = 1_000_000.0  # the fake clock's first reading (a whole second)
EVERYONE = (0, 2**32 - 1)


# ---- commands from the node: one helper per kind, the only place their shape is known ----
def start_shake_packets(worker: ServerWorker, qps: float, total: int) -> None:
    worker.on_command(SetShakeRate(qps, total))


def start_sent_packets(worker: ServerWorker, qps: float, total: int,
                       users: tuple[int, int] = EVERYONE) -> None:
    worker.on_command(SetSendRate(qps, total, *users))


# ---- the harness ----
@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock(START)
    monkeypatch.setattr(server_worker, "time", clock)
    return clock


def new_worker(tmp_path: Path, **settings: Any) -> ServerWorker:
    config = ServerConfig(run_dir=tmp_path, run_id="unit", host_name="unit", seed=7,
                          **settings)
    return ServerWorker(config, 0)


def connect(worker: ServerWorker,
            on_write: Callable[[bytes], None] | None = None
            ) -> tuple[ServerConnection, FakeTransport]:
    connection = ServerConnection(worker)
    transport = FakeTransport(on_write)
    connection.connection_made(transport)  # type: ignore[arg-type]
    return connection, transport


def log_in(worker: ServerWorker, user: int,
           on_write: Callable[[bytes], None] | None = None
           ) -> tuple[ServerConnection, FakeTransport]:
    connection, transport = connect(worker, on_write)
    connection.data_received(p.encode_login(user, 0))
    return connection, transport


def shake(connection: ServerConnection, times: int = 1) -> None:
    assert connection.user_id is not None
    for _ in range(times):
        connection.data_received(p.encode_shake(connection.user_id, 0))


def claim(connection: ServerConnection, packet_id: int, on_behalf_of: int = 0) -> None:
    connection.data_received(p.encode_claim(on_behalf_of, packet_id, 0))


def results(transport: FakeTransport) -> list[int]:
    return [frame.result for frame in transport.frames_of(p.ShakeResult)]


def next_second(worker: ServerWorker) -> None:
    """The node's tick at the end of the worker's current second."""
    worker.tick(worker.now_s)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` in a fresh event loop (the generator and the write-ahead ledger
    schedule their work on the running loop)."""
    asyncio.run(scenario())


async def end_of_pass() -> None:
    """Let the loop finish its current pass: records are written, held replies go out."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def cancel_scheduled_step(worker: ServerWorker) -> None:
    if worker._generator_timer is not None:
        worker._generator_timer.cancel()
        worker._generator_timer = None


def generator_pass(worker: ServerWorker) -> None:
    """One step of the generators, with the test playing the step timer: the steps the
    worker schedules itself are cancelled."""
    cancel_scheduled_step(worker)
    worker._generate()
    cancel_scheduled_step(worker)


def ledger_lines(worker: ServerWorker, kind: str) -> list[list[str]]:
    lines = worker.ledger.path.read_text().splitlines()
    return [line.split("\t")[1:] for line in lines if line.startswith(kind + "\t")]


async def send_one_packet(worker: ServerWorker, users: tuple[int, int] = EVERYONE) -> None:
    start_sent_packets(worker, 1, 1, users)
    generator_pass(worker)
    await end_of_pass()


# ---- shedding ----
def test_a_worker_sheds_above_its_share_of_max_qps(tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, max_qps=9, workers=2)  # this worker's share: ceil(9/2) = 5
    transports = [log_in(worker, user)[1] for user in range(1, 8)]
    for connection in worker.online.connections.values():
        shake(connection)
    shed = [results(t) for t in transports]
    assert shed == [[p.RESULT_NONE]] * 5 + [[p.RESULT_OVERLOAD]] * 2
    counters = worker.counters
    assert (counters.requests, counters.responses, counters.none, counters.overload) == \
        (7, 7, 5, 2)
    next_second(worker)  # a new second, a new budget
    shake(worker.online.connections[7])
    assert results(transports[-1]) == [p.RESULT_OVERLOAD, p.RESULT_NONE]
    assert counters.overload == 2


def test_a_connection_over_its_own_budget_does_not_spend_the_workers(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, max_qps=8, workers=2, max_qps_per_connection=3)
    greedy, greedy_transport = log_in(worker, 1)
    shake(greedy, 6)
    assert results(greedy_transport) == [p.RESULT_NONE] * 3 + [p.RESULT_OVERLOAD] * 3
    modest, modest_transport = log_in(worker, 2)
    shake(modest, 2)  # the worker's budget of 4 has 1 left, not 0
    assert results(modest_transport) == [p.RESULT_NONE, p.RESULT_OVERLOAD]
    assert (worker.counters.requests, worker.counters.overload) == (8, 4)
    next_second(worker)
    shake(greedy, 4)
    assert results(greedy_transport)[6:] == [p.RESULT_NONE] * 3 + [p.RESULT_OVERLOAD]
    assert worker.counters.overload == 5


# ---- logging in ----
@pytest.mark.parametrize("first_frame", [
    p.encode_shake(1, 0),
    p.encode_claim(1, p.SEND_PACKET_ID_BASE, 0),
])
def test_a_frame_before_login_is_a_protocol_error(
        tmp_path: Path, clock: FakeClock, first_frame: bytes) -> None:
    worker = new_worker(tmp_path)
    connection, transport = connect(worker)
    connection.data_received(first_frame + p.encode_login(1, 0))
    assert transport.aborted
    assert transport.written == b""  # not even the LOGIN behind it is answered
    counters = worker.counters
    assert (counters.protocol_errors, counters.requests, counters.logins) == (1, 0, 0)
    assert len(worker.online) == 0


def test_logging_in_twice_on_one_connection_is_a_protocol_error(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path)
    connection, transport = log_in(worker, 5)
    assert transport.frames() == [p.LoginOk(int(START), 5, 0)]
    connection.data_received(p.encode_login(6, 0))
    assert transport.aborted
    assert len(transport.frames()) == 1
    assert (worker.counters.protocol_errors, worker.counters.logins) == (1, 1)
    assert worker.online.connections == {5: connection}  # until its close comes through
    connection.connection_lost(None)
    assert worker.online.connections == {}


def test_a_second_connection_of_a_user_replaces_the_first(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path)
    old, old_transport = log_in(worker, 5)
    new, new_transport = log_in(worker, 5)
    assert old_transport.aborted and not new_transport.aborted
    assert worker.counters.protocol_errors == 0
    old.connection_lost(None)  # the old one's close must not log the new one out
    assert worker.online.connections == {5: new}
    assert worker.counters.connections == 1


def test_a_connection_that_never_logs_in_is_closed_after_the_login_timeout(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, login_timeout_s=10.0)

    async def scenario() -> None:
        _, silent = connect(worker)
        _, prompt = log_in(worker, 1)
        clock.now = START + 9.5
        worker._close_late_logins()
        assert not silent.aborted
        clock.now = START + 10.0
        worker._close_late_logins()
        worker._close_late_logins()
        assert silent.aborted and not prompt.aborted
        assert worker.counters.login_timeouts == 1

    run(scenario)


# ---- claims ----
def test_strangers_and_second_claims_get_zero_and_leave_the_ledger_alone(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path)

    async def scenario() -> None:
        recipients = {user: log_in(worker, user) for user in (1, 2, 3)}
        await send_one_packet(worker)
        [(packet, amount, users, shares)] = ledger_lines(worker, "S")
        assert sorted(map(int, users.split(","))) == [1, 2, 3]
        packet_id, shares_in_order = int(packet), [int(s) for s in shares.split(",")]
        stranger, stranger_transport = log_in(worker, 9)
        claim(stranger, packet_id)  # not a recipient
        claim(stranger, packet_id, on_behalf_of=1)  # for a recipient: still a stranger
        first, first_transport = recipients[1]
        claim(first, packet_id, on_behalf_of=2)  # a recipient claiming for another
        claim(first, packet_id)
        claim(first, packet_id)  # the same share twice
        claim(first, p.SEND_PACKET_ID_BASE + 999)  # no such packet
        await end_of_pass()
        zero = p.ClaimResult(int(START), packet_id, 0)
        assert stranger_transport.frames_of(p.ClaimResult) == [zero, zero]
        assert first_transport.frames_of(p.ClaimResult) == [
            zero, p.ClaimResult(int(START), packet_id, shares_in_order[0]), zero,
            p.ClaimResult(int(START), p.SEND_PACKET_ID_BASE + 999, 0)]
        assert ledger_lines(worker, "C") == [[packet, "1", str(shares_in_order[0])]]
        counters = worker.counters
        assert (counters.claims, counters.claimed_amount, counters.claims_rejected) == \
            (1, shares_in_order[0], 5)
        for user in (2, 3):
            claim(recipients[user][0], packet_id)
        await end_of_pass()
        assert [line[1] for line in ledger_lines(worker, "C")] == ["1", "2", "3"]
        assert sum(int(line[2]) for line in ledger_lines(worker, "C")) == int(amount)
        assert worker.book.open == {}  # fully claimed: the packet is closed

    run(scenario)


# ---- drawing recipients ----
def test_with_fewer_than_three_users_online_no_packet_is_sent_until_a_third_logs_in(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path)

    async def scenario() -> None:
        transports = [log_in(worker, user)[1] for user in (1, 2)]
        start_sent_packets(worker, 1, 1)
        generator_pass(worker)
        await end_of_pass()
        assert (worker.counters.sent_packets, worker.send_rate.released) == (0, 0)
        assert ledger_lines(worker, "S") == []
        assert all(t.frames_of(p.SendNotice) == [] for t in transports)
        transports.append(log_in(worker, 3)[1])
        clock.now += 1
        generator_pass(worker)  # the packet that was held back goes out now
        await end_of_pass()
        assert (worker.counters.sent_packets, worker.send_rate.released) == (1, 1)
        notices = [t.frames_of(p.SendNotice) for t in transports]
        assert notices[0] == notices[1] == notices[2]
        [notice] = notices[0]
        assert (notice.packet_id, notice.n_users) == (p.SEND_PACKET_ID_BASE, 3)
        assert sorted((notice.user1, notice.user2, notice.user3)) == [1, 2, 3]

    run(scenario)


def test_only_users_in_the_send_range_are_drawn(tmp_path: Path, clock: FakeClock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    worker = new_worker(tmp_path)

    async def scenario() -> None:
        for user in (1, 2, 10, 11, 12):
            log_in(worker, user)
        await send_one_packet(worker, users=(1, 10))  # only 1, 2 and 10 are in range
        [(_, _, users, _)] = ledger_lines(worker, "S")
        assert sorted(map(int, users.split(","))) == [1, 2, 10]
        start_sent_packets(worker, 1, 1, (1, 9))  # only 1 and 2: too few
        with caplog.at_level(logging.WARNING, logger=server_worker.__name__):
            generator_pass(worker)
            generator_pass(worker)  # within SHORT_OF_RECIPIENTS_LOG_S: not said again
        assert worker.counters.sent_packets == 1
        assert [r.getMessage() for r in caplog.records] == [
            "sends wait: this worker holds 2 online users in 1..9, a sent packet needs 3 "
            "(connections are spread over the workers by the kernel; a wider range or more "
            "users helps)"]

    run(scenario)


# ---- the generator's pace ----
@pytest.mark.parametrize(("rate", "interval", "most"), [
    (200 / 51, 0.2, 2),  # the seed's packets on one of 51 workers: 5 steps a second
    (25, 0.04, 2),  # about one packet a step
    (400, 0.02, 16),  # 50 steps a second at most, two steps' worth at most
    (0, 0.2, 1),
])
def test_a_generator_steps_about_once_a_packet_within_its_bounds(
        rate: float, interval: float, most: int) -> None:
    assert generator_interval(rate) == pytest.approx(interval)
    assert one_step(rate) == most


# ---- the generator after a stall ----
def test_after_a_stall_one_generator_pass_makes_at_most_the_capped_number(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path)
    rate = 400
    assert one_step(rate) == 16  # two 20 ms steps' worth

    async def scenario() -> None:
        start_shake_packets(worker, rate, 100_000)
        generator_pass(worker)
        assert worker.counters.generated == 1  # the first packet is due at once
        clock.now += 10.0  # a stalled loop: 4,000 packets behind
        generator_pass(worker)
        assert worker.counters.generated == 1 + 16
        clock.now += 0.03125  # the schedule slipped: from here on, the steady rate
        generator_pass(worker)
        assert worker.counters.generated == 1 + 16 + 12
        await end_of_pass()
        assert len(ledger_lines(worker, "G")) == 29
        assert len(worker.sets) == 29

    run(scenario)


# ---- write-ahead ----
def test_a_payout_is_written_to_its_connection_only_after_its_ledger_record(
        tmp_path: Path, clock: FakeClock) -> None:
    worker = new_worker(tmp_path, n_sets=1)
    ledger_when_written: list[tuple[type, str]] = []

    def note_ledger(data: bytes) -> None:
        (frame,), _ = p.decode_frames(data)
        ledger_when_written.append((type(frame), worker.ledger.path.read_text()))

    async def scenario() -> None:
        connections = [log_in(worker, user, note_ledger)[0] for user in (1, 2, 3)]
        start_shake_packets(worker, 1, 1)
        generator_pass(worker)
        await end_of_pass()
        ledger_when_written.clear()
        shake(connections[0])
        assert ledger_when_written == []  # held: its W record is not in the file yet
        await end_of_pass()
        [(packet_id, amount)] = ledger_lines(worker, "G")
        won = f"W\t{packet_id}\t1\t{amount}\n"
        [(kind, ledger)] = ledger_when_written
        assert kind is p.ShakeResult and ledger.endswith(won)
        ledger_when_written.clear()
        await send_one_packet(worker)
        assert [kind for kind, _ in ledger_when_written] == [p.SendNotice] * 3
        assert all("\nS\t" in ledger for _, ledger in ledger_when_written)
        ledger_when_written.clear()
        [(sent_id, *_)] = ledger_lines(worker, "S")
        claim(connections[1], int(sent_id))
        assert ledger_when_written == []
        await end_of_pass()
        assert ledger_when_written[0][0] is p.ClaimResult
        assert f"\nC\t{sent_id}\t2\t" in ledger_when_written[0][1]

    run(scenario)
