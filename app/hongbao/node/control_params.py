"""What the nodes' control APIs accept: each route's parameters with their caps, and the
pure checks (finite and bounded numbers, safe phase names, one spelling of each
parameter, a token off loopback). No HTTP here: ``node.control`` serves these.

A request is refused when it names a parameter its route does not know, repeats one,
gives both spellings of one (``sum`` and ``total``), or gives a value that is not a finite
number within the parameter's bounds.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN_ENV = "HONGBAO_CONTROL_TOKEN"
MAX_GENERATOR_QPS = 100_000  # packets per second, whole server node
UNLIMITED = 2**31 - 1  # the original's "no total"
MAX_UID = 2**32 - 1
MAX_CLIENT_QPS = 1_000_000  # shakes per second, whole client node
MAX_SECOND = 2**32 - 1  # a Unix second
RECIPIENTS_NEEDED = 3

Query = dict[str, float | int | str]


class BadParameter(ValueError):
    pass


@dataclass(frozen=True)
class Param:
    """One numeric query parameter: its name, the original's spelling, its bounds."""

    name: str
    maximum: float
    minimum: float = 0
    integer: bool = True
    default: float | None = None  # None: required
    alias: str | None = None

    def spellings(self) -> str:
        return f"'{self.name}'" + (f" (or '{self.alias}')" if self.alias else "")

    def describe(self) -> str:
        name = self.name + (f"|{self.alias}" if self.alias else "")
        default = "" if self.default is None else f" (default {self.default:.0f})"
        return f"{name}={self.minimum:.0f}..{self.maximum:.0f}{default}"


@dataclass(frozen=True)
class TextParam:
    """A required text parameter that must match ``pattern`` in full."""

    name: str
    pattern: re.Pattern[str]
    meaning: str

    def parse(self, raw: str) -> str:
        if not self.pattern.fullmatch(raw):
            raise BadParameter(f"query parameter '{self.name}' must be {self.meaning}, "
                               f"got {raw!r}")
        return raw

    def describe(self) -> str:
        return f"{self.name}=<{self.meaning}>"


AnyParam = Param | TextParam

PHASE = TextParam("name", re.compile(r"[A-Za-z0-9_.-]{1,64}"),
                  "1-64 characters of A-Z a-z 0-9 _ . -")
GENERATOR_QPS = Param("qps", MAX_GENERATOR_QPS, integer=False)
GENERATOR_TOTAL = Param("total", UNLIMITED, default=UNLIMITED, alias="sum")

ROUTES: dict[str, dict[str, tuple[AnyParam, ...]]] = {
    "server": {
        "/status": (),
        "/phase": (PHASE,),
        "/shake": (GENERATOR_QPS, GENERATOR_TOTAL),
        "/yaohongbao": (GENERATOR_QPS, GENERATOR_TOTAL),
        "/send": (GENERATOR_QPS, GENERATOR_TOTAL,
                  Param("min_uid", MAX_UID, default=0, alias="min"),
                  Param("max_uid", MAX_UID, default=MAX_UID, alias="max")),
    },
    "client": {
        # the load window's bounds, in Unix seconds; 0: since the last /qps, up to now
        "/status": (Param("window_since", MAX_SECOND, default=0),
                    Param("window_until", MAX_SECOND, default=0)),
        "/phase": (PHASE,),
        "/qps": (Param("qps", MAX_CLIENT_QPS),),
    },
}
ROUTES["server"]["/fahongbao"] = ROUTES["server"]["/send"]
NOTES = {
    "/status": "counters of live workers, workers_alive, per_worker last_tick_age_s; a "
               "client's load window only over seconds window_since <= s < window_until",
    "/phase": "tag every later point with this phase",
    "/shake": "shake-packet generator; qps=0 stops it",
    "/yaohongbao": "the original's name for /shake",
    "/send": f"send-packet generator; the range must hold >= {RECIPIENTS_NEEDED} users",
    "/fahongbao": "the original's name for /send",
    "/qps": "shakes per second for this node; qps=0 pauses sending",
}


def phase_name(raw: str) -> str:
    """A phase name that is safe in metric tags, file names and reports."""
    return PHASE.parse(raw)


def finite_number(param: Param, raw: str) -> float | int:
    """``raw`` as ``param``'s value: a whole or a finite number within its bounds."""
    try:
        value: float | int = int(raw) if param.integer else float(raw)
    except ValueError:
        kind = "a whole number" if param.integer else "a number"
        raise BadParameter(f"query parameter {param.spellings()} must be {kind}, "
                           f"got {raw!r}") from None
    if not math.isfinite(value) or not param.minimum <= value <= param.maximum:
        raise BadParameter(f"query parameter {param.spellings()} must be "
                           f"{param.minimum:g}..{param.maximum:g}, got {raw!r}")
    return value


def _one_value_each(pairs: Iterable[tuple[str, str]],
                    by_spelling: dict[str, AnyParam]) -> dict[str, str]:
    given: dict[str, tuple[str, str]] = {}  # canonical name -> (spelling used, raw value)
    for spelling, raw in pairs:
        param = by_spelling.get(spelling)
        if param is None:
            known = ", ".join(sorted(by_spelling)) or "none"
            raise BadParameter(f"unknown query parameter '{spelling}' (known: {known})")
        if param.name in given:
            first = given[param.name][0]
            what = "is repeated" if first == spelling else f"and '{first}' are one parameter"
            raise BadParameter(f"query parameter '{spelling}' {what}: give it once")
        given[param.name] = (spelling, raw)
    return {name: raw for name, (_, raw) in given.items()}


def parse_query(pairs: Iterable[tuple[str, str]], params: Iterable[AnyParam]) -> Query:
    """Validate a query string's (name, value) pairs against a route's parameters."""
    params = tuple(params)
    by_spelling: dict[str, AnyParam] = {}
    for param in params:
        by_spelling[param.name] = param
        if isinstance(param, Param) and param.alias:
            by_spelling[param.alias] = param
    given = _one_value_each(pairs, by_spelling)
    values: Query = {}
    for param in params:
        raw = given.get(param.name)
        if isinstance(param, TextParam):
            if raw is None:
                raise BadParameter(f"missing query parameter '{param.name}'")
            values[param.name] = param.parse(raw)
        elif raw is None or raw == "":
            if param.default is None:
                raise BadParameter(f"missing query parameter {param.spellings()}")
            values[param.name] = int(param.default) if param.integer else param.default
        else:
            values[param.name] = finite_number(param, raw)
    return values


def recipient_range(low: int, high: int) -> tuple[int, int]:
    """A user-id range that can hold a sent packet's recipients."""
    if high < low:
        raise BadParameter(f"max_uid ({high}) must be >= min_uid ({low})")
    if high - low + 1 < RECIPIENTS_NEEDED:
        raise BadParameter(f"min_uid..max_uid ({low}..{high}) must hold at least "
                           f"{RECIPIENTS_NEEDED} users: a sent packet has {RECIPIENTS_NEEDED} "
                           "recipients")
    return low, high


def describe_routes(role: str) -> str:
    """The control API of a node, for ``--help``: each route, what it does, its
    parameters with their bounds."""
    lines = []
    for path, params in ROUTES[role].items():
        lines.append(f"  {path:<12} {NOTES[path]}")
        lines.extend(f"  {'':<14}{param.describe()}" for param in params)
    return "\n".join(lines)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def required_token(host: str, token: str | None) -> str | None:
    """The token every request must carry, or None on loopback without one. Raises
    ValueError when a non-loopback bind has no token."""
    if token == "":
        raise ValueError(f"--control-token (or ${TOKEN_ENV}) is empty")
    if token is None and not is_loopback(host):
        raise ValueError(f"--control {host} is not loopback: give --control-token or set "
                         f"${TOKEN_ENV}, and send 'Authorization: Bearer <token>'")
    return token


def authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                             token.encode())
