"""Our client against a behavioural double of the original server (issue 11): notices in
place of shake results, shares of 0 cents, no reply to a claim on a finished packet.
First the double itself is checked over raw sockets, then our real client process
(``--server-kind original``) must balance against it to the cent."""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from hongbao import protocol as p
from hongbao.local.node_process import control_get, start_node
from hongbao.metrics.pointfile import read_points
from tests.doubles.original_server import (
    ORIGINAL_SETS,
    SHARES_PER_PACKET,
    Options,
    ThreadedDouble,
    Totals,
    running_original_server,
)
from tests.e2e.nodes import RUN_ID, wait_for

USERS = 500
QPS = 200
SHAKE_PACKETS = 400
SENT_PACKETS = 30
NOTICES_PER_PACKET = SHARES_PER_PACKET + 1  # each packet gets one claim too many
CLAIM_TIMEOUT_S = 2


# ---- the double, over raw sockets ----
def recv_frame(sock: socket.socket) -> p.Frame:
    data = b""
    while len(data) < 2 or len(data) < struct.unpack_from(">H", data)[0]:
        chunk = sock.recv(1024)
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} bytes")
        data += chunk
    frames, rest = p.decode_frames(data)
    assert len(frames) == 1 and not rest, f"one frame expected, got {frames} + {rest!r}"
    return frames[0]


def login(double: ThreadedDouble, user: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", double.port), timeout=5)
    sock.sendall(p.encode_login(user, 0))
    reply = recv_frame(sock)
    assert isinstance(reply, p.LoginOk) and reply.user_id == user
    return sock


def shake(sock: socket.socket, user: int) -> p.Frame:
    sock.sendall(p.encode_shake(user, 0))
    return recv_frame(sock)


def send_one_packet(double: ThreadedDouble, sender: int) -> None:
    control_get(double.control, "/fahongbao", qps=100, sum=1, min=sender, max=sender)
    wait_for(lambda: double.totals().sent == 1, 5, "the packet sent")


def test_double_answers_shakes_with_the_waiting_notice_and_never_pushes_one() -> None:
    user, neighbour = 7, 7 + ORIGINAL_SETS  # one SET
    with running_original_server(Options(seed=3)) as double:
        socks = {u: login(double, u) for u in (user, neighbour)}
        send_one_packet(double, user)
        replies = [shake(socks[user], user) for _ in range(SHARES_PER_PACKET + 1)]
        neighbours_first = shake(socks[neighbour], neighbour)
        for sock in socks.values():
            sock.close()
    assert [type(reply) for reply in replies] == [p.SendNotice] * 3 + [p.ShakeResult]
    assert replies[-1].result == p.RESULT_NONE  # type: ignore[union-attr]
    assert isinstance(neighbours_first, p.ShakeResult)  # no notice was pushed to it


def test_double_ignores_the_claims_user_id_and_answers_no_bad_claim() -> None:
    user = 9
    options = Options(seed=3, send_amount=(1, 1), notices_per_packet=1)
    with running_original_server(options) as double:
        sock = login(double, user)
        send_one_packet(double, user)
        notice = shake(sock, user)
        assert isinstance(notice, p.SendNotice)
        shares = []
        for claimant in (0, 1234, 99):  # whatever the claim says, the share is handed out
            sock.sendall(p.encode_claim(claimant, notice.packet_id, 0))
            reply = recv_frame(sock)
            assert isinstance(reply, p.ClaimResult) and reply.packet_id == notice.packet_id
            shares.append(reply.amount)
        for packet_id in (notice.packet_id, notice.packet_id + 1):  # finished, unknown
            sock.sendall(p.encode_claim(0, packet_id, 0))
        after_bad_claims = shake(sock, user)  # replies keep order: the claims got none
        ignored = double.totals().claims_ignored
        sock.close()
    assert sorted(shares) == [0, 0, 1]  # 1 cent in 3 shares: two of them are 0
    assert isinstance(after_bad_claims, p.ShakeResult)
    assert ignored == 2


# ---- our client process against the double ----
def every_packet_handed_out(totals: Totals) -> bool:
    return (totals.won == SHAKE_PACKETS
            and totals.notices == SENT_PACKETS * NOTICES_PER_PACKET)


def client_settled(counters: dict[str, int], totals: Totals) -> bool:
    """Sending has stopped (the double saw exactly the client's requests, up to a second
    after the client counted them), every shake is answered or timed out, and every claim
    answered or expired."""
    return (counters["requests"] == totals.requests
            == counters["responses"] + counters["timeouts"]
            and counters["claims_sent"] == totals.notices
            == counters["claims"] + counters["claims_unanswered"])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """500 users at 200 QPS; 400 shake packets at 100/s and 30 sent packets at 10/s, each
    noticed to 4 shakers but split in 3 shares of 1-30 cents (some 0)."""
    run_dir: Path = tmp_path_factory.mktemp("original")
    options = Options(seed=11, send_amount=(1, 30), notices_per_packet=NOTICES_PER_PACKET)
    with running_original_server(options) as double:
        client = start_node(run_dir, RUN_ID, "client01", [
            "client", "--server", f"127.0.0.1:{double.port}", "--server-kind", "original",
            "--users", str(USERS), "--workers", "1", "--connect-rate", "4000",
            "--timeout", str(CLAIM_TIMEOUT_S)])
        try:
            wait_for(lambda: client.counters()["logins"] == USERS, 30, "every user logged in")
            control_get(double.control, "/yaohongbao", qps=100, sum=SHAKE_PACKETS)
            control_get(double.control, "/fahongbao", qps=10, sum=SENT_PACKETS, min=0,
                        max=USERS - 1)
            client.get("/qps", qps=QPS)
            wait_for(lambda: every_packet_handed_out(double.totals()), 40,
                     "every shake packet won and every sent packet noticed")
            client.get("/qps", qps=0)
            wait_for(lambda: client_settled(client.counters(), double.totals()), 20,
                     "every shake answered and every claim answered or expired")
            result: dict[str, Any] = {"client": client.counters(), "double": double.totals(),
                                      "run_dir": run_dir}
        finally:
            exit_code = client.stop()
    result["exit_code"] = exit_code
    return result


def test_every_shake_is_answered_by_a_result_or_a_notice(finished_run: dict) -> None:
    client, double = finished_run["client"], finished_run["double"]
    results = client["won"] + client["none"] + client["overload"]
    assert client["requests"] == client["responses"] == results + client["notices_answered"]
    assert client["requests"] == double.requests >= 5 * QPS


def test_no_timeouts_when_nothing_was_lost(finished_run: dict) -> None:
    client = finished_run["client"]
    assert client["timeouts"] == 0
    assert (client["protocol_errors"], client["disconnects"]) == (0, 0)


def test_every_notice_answered_a_shake(finished_run: dict) -> None:
    client, double = finished_run["client"], finished_run["double"]
    assert client["notices"] == client["notices_answered"] == double.notices
    assert double.notices == SENT_PACKETS * NOTICES_PER_PACKET


def test_won_amounts_equal_the_doubles_own_totals(finished_run: dict) -> None:
    client, double = finished_run["client"], finished_run["double"]
    assert client["won"] == double.won == SHAKE_PACKETS
    assert client["won_amount"] == double.won_amount


def test_claimed_amounts_equal_the_doubles_own_totals_to_the_cent(finished_run: dict) -> None:
    client, double = finished_run["client"], finished_run["double"]
    assert client["claims"] == double.claims == SHARES_PER_PACKET * SENT_PACKETS
    assert client["claimed_amount"] == double.claimed_amount == double.sent_amount


def test_zero_cent_shares_are_counted_as_claims(finished_run: dict) -> None:
    client, double = finished_run["client"], finished_run["double"]
    assert client["claims_zero"] == double.claims_zero > 0


def test_claims_on_a_finished_packet_are_counted_unanswered(finished_run: dict) -> None:
    client, double = finished_run["client"], finished_run["double"]
    assert client["claims_unanswered"] == double.claims_ignored == SENT_PACKETS
    assert client["claims_sent"] == double.claims + double.claims_ignored
    assert client["claims_late"] == 0


def test_per_second_points_carry_the_claim_counters(finished_run: dict) -> None:
    points = [point for path in (finished_run["run_dir"] / "metrics").glob("client-*.lp")
              for point in read_points(path)]
    for name in ("notices_answered", "claims_sent", "claims", "claims_zero",
                 "claims_unanswered", "claimed_amount"):
        assert sum(point.fields[name] for point in points) == finished_run["client"][name]


def test_client_drains_and_exits_zero(finished_run: dict) -> None:
    assert finished_run["exit_code"] == 0
