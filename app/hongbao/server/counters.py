"""A server worker's cumulative counters (DESIGN §5 field names)."""

from __future__ import annotations

from hongbao.metrics.counters import Counters

SERVER_FIELDS = (
    "connections",
    "logins",
    "requests",
    "responses",
    "won",
    "none",
    "overload",
    "won_amount",
    "generated",
    "generated_amount",
    "sent_packets",
    "sent_amount",
    "claims",
    "claimed_amount",
    "claims_rejected",
    "protocol_errors",
    "login_timeouts",
    "slow_closed",
    "accept_pauses",
)
SERVER_GAUGES = frozenset({"connections"})


class ServerCounters(Counters):
    __slots__ = SERVER_FIELDS
