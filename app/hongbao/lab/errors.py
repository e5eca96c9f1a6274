"""The errors the lab raises: each names what is wrong and what to do."""

from __future__ import annotations


class LabError(Exception):
    """The lab cannot be built, inspected or removed as asked."""


class LabInventoryError(LabError):
    """The lab inventory does not describe a usable topology."""
