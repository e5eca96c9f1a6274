"""Every frame of DESIGN §2, byte by byte against hand-written hex."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hongbao import protocol as p

T = 0x0000000065A1B2C3  # sender time used in every vector

VECTORS = [
    (p.Login(T, 7), "0010 0000 0000000065a1b2c3 00000007"),
    (p.LoginOk(T, 7, 0), "0014 0001 0000000065a1b2c3 00000007 00000000"),
    (p.Shake(T, 0x01020304), "0010 0002 0000000065a1b2c3 01020304"),
    (
        p.ShakeResult(T, 9, 14, 0x100000, 1234),
        "001c 0003 0000000065a1b2c3 00000009 0000000e 00100000 000004d2",
    ),
    (
        p.SendNotice(T, 0x200001, 5000, 3, 1, 2, 3),
        "0024 0004 0000000065a1b2c3 00200001 00001388 00000003 00000001 00000002 00000003",
    ),
    (p.Claim(T, 0, 0x200001), "0014 0005 0000000065a1b2c3 00000000 00200001"),
    (p.ClaimResult(T, 0x200001, 1666), "0014 0006 0000000065a1b2c3 00200001 00000682"),
]


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("frame", "wire"), VECTORS, ids=lambda v: type(v).__name__)
def test_frame_encodes_to_exact_bytes(frame: p.Frame, wire: str) -> None:
    assert p.encode(frame) == hexbytes(wire)


@pytest.mark.parametrize(("frame", "wire"), VECTORS, ids=lambda v: type(v).__name__)
def test_frame_decodes_from_exact_bytes(frame: p.Frame, wire: str) -> None:
    frames, rest = p.decode_frames(hexbytes(wire))
    assert frames == [frame]
    assert rest == b""


def test_named_encoders_match_generic_encoder() -> None:
    assert p.encode_login(7, T) == p.encode(p.Login(T, 7))
    assert p.encode_login_ok(7, T) == p.encode(p.LoginOk(T, 7, 0))
    assert p.encode_shake(7, T) == p.encode(p.Shake(T, 7))
    assert p.encode_shake_result(9, 14, 0x100000, 1234, T) == p.encode(
        p.ShakeResult(T, 9, 14, 0x100000, 1234)
    )
    assert p.encode_send_notice(0x200001, 5000, (1, 2, 3), T) == p.encode(
        p.SendNotice(T, 0x200001, 5000, 3, 1, 2, 3)
    )
    assert p.encode_claim(0, 0x200001, T) == p.encode(p.Claim(T, 0, 0x200001))
    assert p.encode_claim_result(0x200001, 1666, T) == p.encode(p.ClaimResult(T, 0x200001, 1666))


def test_frame_sizes_follow_the_table() -> None:
    assert p.FRAME_SIZE == {0: 16, 1: 20, 2: 16, 3: 28, 4: 36, 5: 20, 6: 20}


STREAM = b"".join(hexbytes(w) for _, w in VECTORS)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_decoder_accepts_any_split(cuts: list[int]) -> None:
    decoder = p.FrameDecoder()
    frames: list[p.Frame] = []
    previous = 0
    for cut in [*sorted(cuts), len(STREAM)]:
        frames.extend(decoder.feed(STREAM[previous:cut]))
        previous = cut
    assert frames == [frame for frame, _ in VECTORS]
    assert decoder.pending == 0


def test_incomplete_frame_is_held_back() -> None:
    frames, rest = p.decode_frames(STREAM[:20])
    assert frames == [VECTORS[0][0]]
    assert rest == STREAM[16:20]


@pytest.mark.parametrize(
    ("wire", "kind", "words"),
    [
        ("0008 0002 00000000", "bad_length", "length 8"),
        ("ffff 0002 0000000065a1b2c3 00000001", "bad_length", "length 65535"),
        ("0010 0009 0000000065a1b2c3 00000001", "unknown_cmd", "cmd 9"),
        ("0014 0002 0000000065a1b2c3 00000001 00000000", "size_mismatch", "must be 16"),
    ],
)
def test_bad_frames_raise_a_named_error(wire: str, kind: str, words: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_frames(hexbytes(wire))
    assert caught.value.kind == kind
    assert words in str(caught.value)


def test_error_is_raised_from_the_header_alone() -> None:
    """A bad header is rejected before its body arrives: nothing waits on garbage."""
    with pytest.raises(p.ProtocolError):
        p.decode_frames(hexbytes("0009 0002"))
