"""Wire protocol v1: frame encoding and incremental decoding, with no sockets.

Every frame is big-endian: ``u16 length`` (whole frame), ``u16 cmd``, ``u64 sender
unix time (s)``, then a fixed number of ``u32`` fields per cmd (DESIGN §2).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER = struct.Struct(">HHQ")
HEADER_SIZE = HEADER.size  # 12

LOGIN = 0
LOGIN_OK = 1
SHAKE = 2
SHAKE_RESULT = 3
SEND_NOTICE = 4
CLAIM = 5
CLAIM_RESULT = 6

RESULT_WON = 14
RESULT_NONE = 15
RESULT_OVERLOAD = 17

SHAKE_PACKET_ID_BASE = 0x100000
SEND_PACKET_ID_BASE = 0x200000
RECIPIENTS_PER_PACKET = 3


class Login(NamedTuple):
    sent_at: int
    user_id: int


class LoginOk(NamedTuple):
    sent_at: int
    user_id: int
    result: int


class Shake(NamedTuple):
    sent_at: int
    user_id: int


class ShakeResult(NamedTuple):
    sent_at: int
    user_id: int
    result: int
    packet_id: int
    amount: int


class SendNotice(NamedTuple):
    sent_at: int
    packet_id: int
    amount: int
    n_users: int
    user1: int
    user2: int
    user3: int


class Claim(NamedTuple):
    sent_at: int
    user_id: int
    packet_id: int


class ClaimResult(NamedTuple):
    sent_at: int
    packet_id: int
    amount: int


Frame = Login | LoginOk | Shake | ShakeResult | SendNotice | Claim | ClaimResult

_FRAME_TYPES: dict[int, type] = {
    LOGIN: Login,
    LOGIN_OK: LoginOk,
    SHAKE: Shake,
    SHAKE_RESULT: ShakeResult,
    SEND_NOTICE: SendNotice,
    CLAIM: Claim,
    CLAIM_RESULT: ClaimResult,
}
CMD_OF: dict[type, int] = {frame_type: cmd for cmd, frame_type in _FRAME_TYPES.items()}
# One struct per cmd: header plus (number of fields - 1) u32s, sent_at being the u64.
_STRUCTS: dict[int, struct.Struct] = {
    cmd: struct.Struct(">HHQ" + "I" * (len(frame_type._fields) - 1))
    for cmd, frame_type in _FRAME_TYPES.items()
}
FRAME_SIZE: dict[int, int] = {cmd: s.size for cmd, s in _STRUCTS.items()}
# The first 4 bytes of every SHAKE frame: the hot path can recognise one without decoding.
SHAKE_PREFIX = struct.pack(">HH", 16, SHAKE)
MAX_FRAME_SIZE = max(FRAME_SIZE.values())


class ProtocolError(Exception):
    """A frame that breaks the protocol. ``kind`` is a short stable label for counting."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def encode(frame: Frame) -> bytes:
    """Encode any frame; the length and cmd come from the frame's type."""
    cmd = CMD_OF[type(frame)]
    packer = _STRUCTS[cmd]
    return packer.pack(packer.size, cmd, *frame)


def encode_login(user_id: int, sent_at: int) -> bytes:
    return _STRUCTS[LOGIN].pack(16, LOGIN, sent_at, user_id)


def encode_login_ok(user_id: int, sent_at: int, result: int = 0) -> bytes:
    return _STRUCTS[LOGIN_OK].pack(20, LOGIN_OK, sent_at, user_id, result)


def encode_shake(user_id: int, sent_at: int) -> bytes:
    return _STRUCTS[SHAKE].pack(16, SHAKE, sent_at, user_id)


def encode_shake_result(
    user_id: int, result: int, packet_id: int, amount: int, sent_at: int
) -> bytes:
    return _STRUCTS[SHAKE_RESULT].pack(
        28, SHAKE_RESULT, sent_at, user_id, result, packet_id, amount
    )


def encode_send_notice(
    packet_id: int, amount: int, users: tuple[int, int, int], sent_at: int
) -> bytes:
    return _STRUCTS[SEND_NOTICE].pack(
        36, SEND_NOTICE, sent_at, packet_id, amount, len(users), *users
    )


def encode_claim(user_id: int, packet_id: int, sent_at: int) -> bytes:
    return _STRUCTS[CLAIM].pack(20, CLAIM, sent_at, user_id, packet_id)


def encode_claim_result(packet_id: int, amount: int, sent_at: int) -> bytes:
    return _STRUCTS[CLAIM_RESULT].pack(20, CLAIM_RESULT, sent_at, packet_id, amount)


def decode_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """Decode every complete frame in ``data``.

    Returns the frames and the unconsumed tail (an incomplete frame, possibly empty).
    Raises ProtocolError on the first frame that breaks the protocol.
    """
    frames: list[Frame] = []
    offset = 0
    end = len(data)
    while end - offset >= 4:
        length, cmd = struct.unpack_from(">HH", data, offset)
        if length < HEADER_SIZE or length > MAX_FRAME_SIZE:
            raise ProtocolError("bad_length", f"frame length {length} is outside 12..36")
        expected = FRAME_SIZE.get(cmd)
        if expected is None:
            raise ProtocolError("unknown_cmd", f"unknown cmd {cmd}")
        if length != expected:
            raise ProtocolError(
                "size_mismatch", f"cmd {cmd} must be {expected} bytes, frame says {length}"
            )
        if end - offset < length:
            break
        fields = _STRUCTS[cmd].unpack_from(data, offset)
        frames.append(_FRAME_TYPES[cmd](*fields[2:]))
        offset += length
    return frames, data[offset:] if offset else data


class FrameDecoder:
    """Incremental decoder: feed byte chunks of any split, get typed frames back."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        frames, self._rest = decode_frames(self._rest + chunk if self._rest else chunk)
        return frames

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._rest)
