"""``summary.json``: a run's phases, knee, money balance and memory, machine-readable
(DESIGN §11)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hongbao.report.series import RunSeries
from hongbao.report.tables import MAX_CLOCK_OFFSET_MS, ClockAgreement, MoneyBalance, PhaseRow

KNEE_PHASE = re.compile(r"knee-(\d+)$")  # a knee search names its steps knee-<qps>


def _phase(row: PhaseRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "target_connections": row.target_connections,
        "connections": row.connections,
        "connect_seconds": row.connect_seconds,
        "target_qps": row.target_qps,
        "held_qps": round(row.held_qps, 1),
        "hold_seconds": row.hold_seconds,
        "p50_ms": row.p50_ms,
        "p99_ms": row.p99_ms,
        "p999_ms": row.p999_ms,
        "timeouts": row.timeouts,
        "status": row.status,
        "limit": row.limit,
    }


def knee(rows: list[PhaseRow]) -> dict[str, Any] | None:
    """The highest knee step that held; None when no knee search ran (or none held)."""
    held = [r for r in rows if KNEE_PHASE.match(r.name) and r.status == "held"]
    if not held:
        return None
    best = max(held, key=lambda r: r.target_qps)
    return {"qps": best.target_qps, "p99_ms": best.p99_ms}


def _scale(metadata: dict[str, object]) -> float | None:
    config = metadata.get("config")
    value = metadata.get("scale", config.get("scale") if isinstance(config, dict) else None)
    return float(value) if isinstance(value, int | float) else None


def _clock(clock: ClockAgreement | None) -> dict[str, Any] | None:
    if clock is None:
        return None
    return {"offsets_ms": clock.offsets_ms, "max_offset_ms": MAX_CLOCK_OFFSET_MS,
            "ok": clock.ok}


def memory_per_connection(series: RunSeries) -> dict[str, float] | None:
    """RSS per connection (KB) of all server and all client processes (nodes and workers),
    at the second each side held the most connections."""
    memory: dict[str, float] = {}
    for role in ("server", "client"):
        connections = getattr(series, role).get("connections", [])
        rss = series.rss_kb.get(role, {})
        if not connections or not rss or max(connections) <= 0:
            continue
        peak = max(range(len(connections)), key=connections.__getitem__)
        second = series.seconds[peak]
        at_peak = rss.get(second) or rss.get(second - 1) or max(rss.values())
        memory[f"{role}_kb_per_connection"] = round(at_peak / connections[peak], 2)
        memory[f"{role}_rss_mb"] = round(at_peak / 1024, 1)
    return memory or None


def summary(run_id: str, rows: list[PhaseRow], balance: MoneyBalance,
            metadata: dict[str, object], memory: dict[str, float] | None,
            clock: ClockAgreement | None = None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "scale": _scale(metadata),
        "phases": [_phase(r) for r in rows],
        "knee": knee(rows),
        "balance": {
            "ok": balance.ok,
            "generated": balance.generated_amount,
            "won": balance.won_amount,
            "queued": balance.queued_amount,
            "lost_in_crash": balance.lost_in_crash_amount,
            "sent": balance.sent_amount,
            "claimed": balance.claimed_amount,
            "unclaimed": balance.unclaimed_amount,
        },
        "memory": memory,
        "clock": _clock(clock),
    }


def write_summary(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    return path
