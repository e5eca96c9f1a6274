"""Claims waiting for their reply: answered once, or expired as unanswered."""

from __future__ import annotations

from hongbao.client.claim_book import ClaimBook

USER = 42
PACKET = 0x200000


def test_a_reply_answers_its_waiting_claim_once() -> None:
    book = ClaimBook()
    book.sent(USER, PACKET, at=10.0)
    assert book.answered(USER, PACKET)
    assert not book.answered(USER, PACKET)
    assert book.waiting_count == 0


def test_a_reply_for_another_user_or_packet_answers_nothing() -> None:
    book = ClaimBook()
    book.sent(USER, PACKET, at=10.0)
    assert not book.answered(USER + 1, PACKET)
    assert not book.answered(USER, PACKET + 1)
    assert book.waiting_count == 1


def test_a_claim_with_no_reply_expires_once_it_is_older_than_the_limit() -> None:
    book = ClaimBook()
    book.sent(USER, PACKET, at=10.0)
    book.sent(USER, PACKET + 1, at=12.0)
    assert book.expire(sent_before=10.0) == 0
    assert book.expire(sent_before=11.0) == 1
    assert book.expire(sent_before=11.0) == 0
    assert book.waiting_count == 1
    assert not book.answered(USER, PACKET)  # the reply came too late
    assert book.answered(USER, PACKET + 1)


def test_an_answered_claim_never_expires() -> None:
    book = ClaimBook()
    book.sent(USER, PACKET, at=10.0)
    book.answered(USER, PACKET)
    assert book.expire(sent_before=100.0) == 0


def test_repeated_claims_on_one_packet_are_answered_oldest_first() -> None:
    book = ClaimBook()
    book.sent(USER, PACKET, at=10.0)
    book.sent(USER, PACKET, at=12.0)
    assert book.answered(USER, PACKET)  # answers the claim sent at 10
    assert book.expire(sent_before=11.0) == 0
    assert book.expire(sent_before=13.0) == 1
    assert book.waiting_count == 0
