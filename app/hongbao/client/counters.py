"""A client worker's cumulative counters (DESIGN §5 field names, plus a few more)."""

from __future__ import annotations

from hongbao.metrics.counters import Counters

CLIENT_FIELDS = (
    "connections",
    "connect_errors",
    "disconnects",
    "logins",
    "logged_in",
    "login_timeouts",
    "requests",
    "responses",
    "won",
    "won_amount",
    "none",
    "overload",
    "notices",
    "notices_answered",  # notices that answered a shake (--server-kind original)
    "claims_sent",
    "claims",  # answered within the timeout, zero amounts included
    "claims_zero",
    "claims_unanswered",  # no reply within the timeout
    "claims_late",  # replies that matched no waiting claim (came after the timeout)
    "claimed_amount",  # every reply's amount, late ones included
    "timeouts",
    "send_skipped",
    "protocol_errors",
)
CLIENT_GAUGES = frozenset({"connections", "logged_in"})


class ClientCounters(Counters):
    __slots__ = CLIENT_FIELDS
