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
    "claims",
    "claimed_amount",
    "timeouts",
    "send_skipped",
    "protocol_errors",
)
CLIENT_GAUGES = frozenset({"connections", "logged_in"})


class ClientCounters(Counters):
    __slots__ = CLIENT_FIELDS
