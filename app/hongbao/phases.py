"""Phase boundaries as points in the ``phase`` measurement of a run directory."""

from __future__ import annotations

import time
from pathlib import Path

from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import PointFile

PHASE_MEASUREMENT = "phase"


def mark_phase(run_dir: Path, run_id: str, phase: str, event: str, host: str,
               target_qps: int = 0, at: int | None = None) -> Point:
    """Append a phase ``start`` or ``end`` point; returns it."""
    if event not in ("start", "end"):
        raise ValueError(f"phase event must be 'start' or 'end', got {event!r}")
    point = Point(
        PHASE_MEASUREMENT,
        {"run_id": run_id, "phase": phase, "host": host},
        {"event": event, "target_qps": target_qps},
        int(time.time()) if at is None else at,
    )
    sink = PointFile(run_dir, f"phase-{host}")
    sink.write([point])
    sink.close()
    return point
