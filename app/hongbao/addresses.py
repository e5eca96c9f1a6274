"""Parsing ``host:port`` flags (kept apart so the CLI imports nothing heavy)."""

from __future__ import annotations


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'host:port' or ':port' or 'port' -> (host, port)."""
    host, _, port = text.rpartition(":")
    try:
        return (host or default_host), int(port)
    except ValueError:
        raise ValueError(f"bad address {text!r}: expected host:port") from None
