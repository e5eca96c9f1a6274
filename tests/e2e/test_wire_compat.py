"""An independent client written with socket and struct only: the server speaks the
table of DESIGN §2, not just its own codec. Also: malformed frames close only their
own connection and are counted."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.nodes import NodeProcess, start_server, wait_for


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def login(port: int, user: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(struct.pack(">HHQI", 16, 0, int(time.time()), user))
    length, cmd, _t, echoed, result = struct.unpack(">HHQII", recv_exact(sock, 20))
    assert (length, cmd, echoed, result) == (20, 1, user, 0)
    return sock


def shake(sock: socket.socket, user: int) -> tuple[int, int, int, int]:
    sock.sendall(struct.pack(">HHQI", 16, 2, int(time.time()), user))
    length, cmd, _t, echoed, result, packet_id, amount = struct.unpack(
        ">HHQIIII", recv_exact(sock, 28))
    assert (length, cmd) == (28, 3)
    return echoed, result, packet_id, amount


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NodeProcess]:
    node = start_server(tmp_path, 1, "--sets", "1")
    yield node
    assert node.stop() == 0


def test_raw_client_logs_in_shakes_and_claims(server: NodeProcess) -> None:
    users = [101, 102, 103]
    socks = {u: login(server.port, u) for u in users}
    assert shake(socks[101], 101) == (101, 15, 0, 0)  # nothing generated yet
    server.get("/shake", qps=100, total=1)
    wait_for(lambda: server.status()["queued"] == 1, 5, "one packet queued")
    echoed, result, packet_id, amount = shake(socks[102], 102)
    assert (echoed, result) == (102, 14)
    assert packet_id == 0x100000 and amount >= 1
    server.get("/send", qps=10, total=1, min_uid=101, max_uid=103)
    total_claimed = 0
    for sock in socks.values():
        length, cmd, _t, pid, amount, n_users, *recipients = struct.unpack(
            ">HHQIIIIII", recv_exact(sock, 36))
        assert (length, cmd, n_users) == (36, 4, 3)
        assert sorted(recipients) == users and pid == 0x200000
        sock.sendall(struct.pack(">HHQII", 20, 5, int(time.time()), 0, pid))
        length, cmd, _t, claimed_pid, share = struct.unpack(">HHQII", recv_exact(sock, 20))
        assert (length, cmd, claimed_pid) == (20, 6, pid) and share >= 1
        total_claimed += share
        sock.sendall(struct.pack(">HHQII", 20, 5, int(time.time()), 0, pid))  # again
        assert struct.unpack(">HHQII", recv_exact(sock, 20))[4] == 0
    assert total_claimed == amount
    for sock in socks.values():
        sock.close()


@pytest.mark.parametrize(
    "bad_frame",
    [
        struct.pack(">HHQI", 9, 2, 0, 1),  # bad length
        struct.pack(">HHQI", 16, 9, 0, 1),  # unknown cmd
        struct.pack(">HHQI", 16, 2, 0, 1),  # a shake before login
    ],
    ids=["bad_length", "unknown_cmd", "no_login"],
)
def test_malformed_frame_closes_only_that_connection(server: NodeProcess,
                                                     bad_frame: bytes) -> None:
    good = [login(server.port, u) for u in (1, 2, 3)]
    bad = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    bad.sendall(bad_frame)
    with pytest.raises((ConnectionError, OSError)):
        recv_exact(bad, 1)
    wait_for(lambda: server.counters()["protocol_errors"] == 1, 5, "the error counted")
    for user, sock in zip((1, 2, 3), good, strict=True):
        assert shake(sock, user)[:2] == (user, 15)
        sock.close()
    assert server.counters()["logins"] == 3
