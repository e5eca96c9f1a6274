"""Explicit ``(source ip, source port)`` pairs, so one host can exceed 64k connections.

The host's ``k``-th user always binds pair ``k``: ports vary fastest, then addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def parse_source_ips(text: str) -> tuple[str, ...]:
    """'127.0.0.2-127.0.0.9', '10.1.0.5,10.1.0.6' or a mix; '' means no explicit bind."""
    addresses: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        try:
            low = ipaddress.IPv4Address(first)
            high = ipaddress.IPv4Address(last) if last else low
        except ipaddress.AddressValueError as error:
            raise ValueError(f"--source-ips: {error}") from None
        if high < low:
            raise ValueError(f"--source-ips: range {part!r} runs backwards")
        addresses.extend(str(ipaddress.IPv4Address(n)) for n in range(int(low), int(high) + 1))
    return tuple(addresses)


@dataclass(frozen=True)
class SourcePairs:
    ips: tuple[str, ...]
    port_low: int
    port_high: int

    def __post_init__(self) -> None:
        if not 1 <= self.port_low <= self.port_high <= 65535:
            raise ValueError(
                f"source port range {self.port_low}-{self.port_high} must lie in 1-65535"
            )

    @property
    def ports_per_ip(self) -> int:
        return self.port_high - self.port_low + 1

    @property
    def capacity(self) -> int:
        return len(self.ips) * self.ports_per_ip

    def pair(self, k: int, users: int = 0, detour: int = 0) -> tuple[str, int] | None:
        """The bind address of the host's ``k``-th user, or None to let the kernel pick.

        ``detour`` > 0 picks a spare pair instead, for when the user's own pair is taken
        by someone else (say, a connection whose ephemeral port the kernel chose): spares
        lie beyond the ``users`` pairs the host's users own, so they never collide; each
        further detour picks another spare, round the spares."""
        if not self.ips:
            return None
        spares = self.capacity - users
        index = k
        if detour > 0 and spares > 0:
            index = users + (k + (detour - 1) * users) % spares
        ip_index, port_offset = divmod(index, self.ports_per_ip)
        return self.ips[ip_index], self.port_low + port_offset

    def check_room(self, users: int) -> None:
        if self.ips and users > self.capacity:
            raise ValueError(
                f"{users} users need {users} source (ip, port) pairs but "
                f"{len(self.ips)} addresses x {self.ports_per_ip} ports give {self.capacity}: "
                "add --source-ips or widen --source-ports"
            )
