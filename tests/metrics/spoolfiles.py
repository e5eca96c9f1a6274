"""Point files like the ones workers write, for shipping tests."""

from __future__ import annotations

from pathlib import Path

from hongbao.metrics.lineprotocol import Point
from hongbao.metrics.pointfile import PointFile

FIRST_SECOND = 1_750_000_000


def server_point(run_id: str, worker: int, second: int) -> Point:
    """A server point whose counters vary with the second, so sums catch gaps."""
    return Point(
        "server",
        {"host": "h1", "worker": str(worker), "run_id": run_id, "phase": "phase2"},
        {"connections": 1000, "requests": 100 + second % 7, "won": second % 3,
         "won_amount": 25 * (second % 5)},
        second,
    )


def server_points(run_id: str, worker: int, first: int, count: int) -> list[Point]:
    return [server_point(run_id, worker, second) for second in range(first, first + count)]


def spool(run_dir: Path, name: str, points: list[Point]) -> Path:
    """Append points to ``<run_dir>/metrics/<name>.lp`` as a worker would."""
    point_file = PointFile(run_dir, name)
    point_file.write(points)
    point_file.close()
    return point_file.path
