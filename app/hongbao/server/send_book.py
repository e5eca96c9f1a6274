"""Sent red packets awaiting claims: who may claim, and the share each claim gets."""

from __future__ import annotations


class SentPacket:
    __slots__ = ("amount", "claimed", "recipients", "shares")

    def __init__(self, amount: int, recipients: list[int], shares: list[int]) -> None:
        self.amount = amount
        self.recipients = recipients
        self.shares = shares  # handed out in claim order; the last is the remainder
        self.claimed: list[int] = []


class SendBook:
    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: dict[int, SentPacket] = {}

    def add(self, packet_id: int, packet: SentPacket) -> None:
        self.open[packet_id] = packet

    def claim(self, packet_id: int, user_id: int) -> int:
        """The claimant's share, or 0 for an unknown packet, a stranger or a second claim."""
        packet = self.open.get(packet_id)
        if packet is None or user_id not in packet.recipients or user_id in packet.claimed:
            return 0
        share = packet.shares[len(packet.claimed)]
        packet.claimed.append(user_id)
        if len(packet.claimed) == len(packet.recipients):
            del self.open[packet_id]
        return share

    def unclaimed_amount(self) -> int:
        return sum(p.amount - sum(p.shares[: len(p.claimed)]) for p in self.open.values())
