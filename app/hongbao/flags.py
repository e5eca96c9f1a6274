"""Flag types for every ``hongbao`` subcommand: a wrong value is one line and exit status 2.

Each type takes the flag's text and returns the parsed value, or raises
``argparse.ArgumentTypeError`` with a message that says what was expected. ``OneLineParser``
prints that message as a single ``hongbao SUBCOMMAND: error: ...`` line, without the usage
block, and exits 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
from collections.abc import Callable
from typing import NoReturn

USAGE_ERROR_EXIT = 2
MAX_PORT = 65535


class UsageError(Exception):
    """A flag combination that only the subcommand can judge: printed like a flag error."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(USAGE_ERROR_EXIT)


def _host(text: str, flag_text: str) -> str:
    host = text.strip("[]")
    if not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {flag_text!r} (no host)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if not all(label and len(label) <= 63 and label.replace("-", "").isalnum()
                   for label in labels):
            raise argparse.ArgumentTypeError(
                f"expected an IP address or host name, got {flag_text!r}") from None
    return host


def _port(text: str, flag_text: str, minimum: int = 0) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT with a numeric port, got {flag_text!r}") from None
    if not minimum <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"port must be {minimum}..{MAX_PORT}, got {port} in {flag_text!r}")
    return port


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1) -> (host, port)."""
    host, colon, port = text.rpartition(":")
    if (colon and not host) or not colon:
        host = "127.0.0.1"
    return _host(host, text), _port(port, text)


def listen_address(text: str) -> tuple[str, int | None]:
    """``HOST`` or ``HOST:PORT`` -> (host, port or None when only the host was given)."""
    if text.count(":") == 1 or text.startswith("["):
        host, port = address(text)
        return host, port
    return _host(text, text), None


def count(minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    """An integer in [minimum, maximum]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"{minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = "count"
    return parse


def rate(minimum: float = 0.0, maximum: float = math.inf,
         inclusive_minimum: bool = True) -> Callable[[str], float]:
    """A finite number in [minimum, maximum] (or (minimum, maximum])."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value < minimum if inclusive_minimum else value <= minimum
        if not math.isfinite(value) or too_low or value > maximum:
            low = f">= {minimum:g}" if inclusive_minimum else f"> {minimum:g}"
            high = "" if math.isinf(maximum) else f" and <= {maximum:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {low}{high}, got {text!r}")
        return value

    parse.__name__ = "rate"
    return parse


def number_range(minimum: int = 0, maximum: int | None = None,
                 unit: str = "") -> Callable[[str], tuple[int, int]]:
    """``LOW-HIGH`` (or one number) with minimum <= LOW <= HIGH <= maximum."""
    what = f"LOW-HIGH{' in ' + unit if unit else ''}"

    def parse(text: str) -> tuple[int, int]:
        low_text, _, high_text = text.partition("-")
        try:
            low, high = int(low_text), int(high_text or low_text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        top = "" if maximum is None else f" <= {maximum}"
        if not minimum <= low <= high or (maximum is not None and high > maximum):
            raise argparse.ArgumentTypeError(
                f"expected {what} with {minimum} <= LOW <= HIGH{top}, got {text!r}")
        return low, high

    parse.__name__ = "range"
    return parse


def workers(text: str) -> int | None:
    """A worker count, or ``auto`` (None): sized from the connections and the fd limit."""
    if text == "auto":
        return None
    try:
        return count(minimum=1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 1 or 'auto', got {text!r}") from None


def phase(text: str) -> str:
    """A phase name: 1-64 characters of A-Z a-z 0-9 _ . -"""
    from hongbao.node.control_params import PHASE, BadParameter

    try:
        return PHASE.parse(text)
    except BadParameter:
        raise argparse.ArgumentTypeError(
            f"expected 1-64 characters of A-Z a-z 0-9 _ . -, got {text!r}") from None


positive = rate(0, inclusive_minimum=False)  # seconds, connects per second: a number > 0
