"""The client's books against either kind of server, driven through a real
ClientConnection over a fake transport: a SEND_NOTICE answers the oldest shake in flight
only against the original server; every claim is counted sent, answered (zero or not),
unanswered or late."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from hongbao import protocol as p
from hongbao.client.config import ClientConfig
from hongbao.client.connection import ClientConnection
from hongbao.client.worker import ClientWorker
from hongbao.metrics.histograms import merge_encoded
from tests.unit.fakes import FakeTransport

TIMEOUT_S = 5.0


def logged_in_user(tmp_path: Path, server_kind: str) -> tuple[ClientWorker, ClientConnection,
                                                                FakeTransport]:
    config = ClientConfig(run_dir=tmp_path, run_id="unit", host_name="unit",
                          server_host="127.0.0.1", server_port=7000, users=1, qps=1,
                          timeout_s=TIMEOUT_S, server_kind=server_kind)
    worker = ClientWorker(config, 0)
    connection = ClientConnection(worker, worker.first_user)
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.data_received(p.encode_login_ok(connection.user, 0))
    return worker, connection, transport


def shake(worker: ClientWorker, times: int) -> None:
    """The worker's own send path, for its only user (1 user at 1 QPS: one shake a
    second), in the ``times`` seconds up to now."""
    first_second = math.floor(time.time()) - times + 1
    for second in range(first_second, first_second + times):
        worker._schedule, worker._cursor = [0], 0
        worker._schedule_second = second
        worker._send_scheduled(until=1)


def notice(connection: ClientConnection, packet_id: int) -> None:
    connection.data_received(p.encode_send_notice(packet_id, 300, (connection.user, 0, 0), 0))


def claim_result(connection: ClientConnection, packet_id: int, amount: int) -> None:
    connection.data_received(p.encode_claim_result(packet_id, amount, 0))


def after_the_timeout(worker: ClientWorker) -> None:
    worker._expire_timeouts(time.time() + TIMEOUT_S + 1)


def test_against_the_original_a_notice_answers_the_oldest_shake_in_flight(
        tmp_path: Path) -> None:
    worker, connection, transport = logged_in_user(tmp_path, "original")
    shake(worker, 2)
    notice(connection, 0x200000)
    counters = worker.counters
    assert (counters.requests, counters.responses, counters.notices_answered) == (2, 1, 1)
    assert connection.inflight == 1
    answered = merge_encoded([worker.latency.take(0)])
    assert answered.get_total_count() == 1  # the answer's latency was recorded
    assert [claim.packet_id for claim in transport.frames_of(p.Claim)] == [0x200000]
    after_the_timeout(worker)
    assert counters.timeouts == 1  # only the shake nothing answered


def test_against_our_server_a_notice_answers_no_shake(tmp_path: Path) -> None:
    worker, connection, transport = logged_in_user(tmp_path, "hongbao")
    shake(worker, 1)
    notice(connection, 0x200000)
    counters = worker.counters
    assert (counters.notices, counters.responses, counters.notices_answered) == (1, 0, 0)
    assert len(transport.frames_of(p.Claim)) == 1
    after_the_timeout(worker)
    assert counters.timeouts == 1


def test_a_notice_with_no_shake_in_flight_is_claimed_and_answers_nothing(
        tmp_path: Path) -> None:
    worker, connection, transport = logged_in_user(tmp_path, "original")
    notice(connection, 0x200000)
    assert (worker.counters.notices, worker.counters.responses) == (1, 0)
    assert len(transport.frames_of(p.Claim)) == 1


@pytest.mark.parametrize("server_kind", ["original", "hongbao"])
def test_claims_are_counted_sent_answered_zero_unanswered_and_late(
        tmp_path: Path, server_kind: str) -> None:
    worker, connection, _ = logged_in_user(tmp_path, server_kind)
    for packet_id in (0x200000, 0x200001, 0x200002):
        notice(connection, packet_id)
    claim_result(connection, 0x200000, 25)
    claim_result(connection, 0x200001, 0)
    after_the_timeout(worker)  # 0x200002 never got its reply
    counters = worker.counters
    assert counters.claims_sent == 3
    assert (counters.claims, counters.claims_zero, counters.claims_unanswered) == (2, 1, 1)
    assert counters.claimed_amount == 25
    assert counters.timeouts == 0  # an unanswered claim is no shake timeout
    claim_result(connection, 0x200002, 7)  # too late, but the money arrived
    assert (counters.claims, counters.claims_late, counters.claimed_amount) == (2, 1, 32)
