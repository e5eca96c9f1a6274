"""The control APIs' checks: finite bounded numbers, one spelling of each parameter,
safe phase names, recipient ranges, tokens."""

from __future__ import annotations

import pytest

from hongbao.node.control_params import (
    MAX_GENERATOR_QPS,
    ROUTES,
    UNLIMITED,
    BadParameter,
    authorized,
    describe_routes,
    parse_query,
    phase_name,
    recipient_range,
    required_token,
)

SHAKE = ROUTES["server"]["/shake"]
SEND = ROUTES["server"]["/send"]


@pytest.mark.parametrize("qps", ["nan", "inf", "-inf", "1e12", "-1", "", "ten",
                                 str(MAX_GENERATOR_QPS + 1)])
def test_generator_qps_must_be_a_finite_number_within_the_cap(qps: str) -> None:
    with pytest.raises(BadParameter, match="'qps'"):
        parse_query([("qps", qps)], SHAKE)


def test_generator_qps_may_be_fractional_and_total_defaults_to_unlimited() -> None:
    assert parse_query([("qps", "0.5")], SHAKE) == {"qps": 0.5, "total": UNLIMITED}


def test_sum_is_the_originals_spelling_of_total() -> None:
    assert parse_query([("qps", "50"), ("sum", "100")], SHAKE) == {"qps": 50.0, "total": 100}


def test_min_and_max_are_the_originals_spellings_of_the_recipient_range() -> None:
    query = parse_query([("qps", "5"), ("sum", "40"), ("min", "0"), ("max", "999")], SEND)
    assert query == {"qps": 5.0, "total": 40, "min_uid": 0, "max_uid": 999}


@pytest.mark.parametrize("pairs, message", [
    ([("qps", "5"), ("qps", "6")], "'qps' is repeated"),
    ([("qps", "5"), ("total", "3"), ("sum", "3")], "'sum' and 'total' are one parameter"),
    ([("qps", "5"), ("min", "0"), ("min_uid", "0")], "'min_uid' and 'min' are one"),
    ([("qps", "5"), ("speed", "6")], "unknown query parameter 'speed'"),
    ([("total", "5")], "missing query parameter 'qps'"),
    ([("qps", "5"), ("total", "2.5")], "must be a whole number"),
])
def test_ambiguous_unknown_or_missing_parameters_are_refused(pairs: list, message: str) -> None:
    with pytest.raises(BadParameter, match=message):
        parse_query(pairs, SEND)


@pytest.mark.parametrize("name", ["phase2", "warm-up.1", "A_b", "x" * 64])
def test_safe_phase_names_pass(name: str) -> None:
    assert phase_name(name) == name


@pytest.mark.parametrize("name", ["", "a\nb", "a b", "a,b", "a=b", "ph\u00e4se", "x" * 65])
def test_phase_names_that_would_break_metric_lines_are_refused(name: str) -> None:
    with pytest.raises(BadParameter, match="1-64 characters"):
        phase_name(name)


@pytest.mark.parametrize("low, high", [(5, 5), (5, 6), (7, 5)])
def test_a_recipient_range_must_hold_three_users(low: int, high: int) -> None:
    with pytest.raises(BadParameter, match="min_uid"):
        recipient_range(low, high)


def test_a_range_of_exactly_three_users_is_enough() -> None:
    assert recipient_range(5, 7) == (5, 7)


@pytest.mark.parametrize("host", ["0.0.0.0", "198.18.0.11", "::", "server.example"])
def test_a_non_loopback_control_address_needs_a_token(host: str) -> None:
    with pytest.raises(ValueError, match="not loopback"):
        required_token(host, None)
    assert required_token(host, "s3cret") == "s3cret"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_token_but_honours_one(host: str) -> None:
    assert required_token(host, None) is None
    assert required_token(host, "s3cret") == "s3cret"


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        required_token("127.0.0.1", "")


@pytest.mark.parametrize("header, ok", [
    ("Bearer s3cret", True), ("bearer s3cret", True), ("Bearer wrong", False),
    ("s3cret", False), ("Basic s3cret", False), (None, False), ("Bearer ", False),
])
def test_only_the_right_bearer_token_is_authorized(header: str | None, ok: bool) -> None:
    assert authorized(header, "s3cret") is ok


def test_help_lists_both_spellings_and_the_caps() -> None:
    text = describe_routes("server")
    assert "total|sum=0..2147483647" in text and "min_uid|min=" in text
    assert f"qps=0..{MAX_GENERATOR_QPS}" in text and "/yaohongbao" in text
